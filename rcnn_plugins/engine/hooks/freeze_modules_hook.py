"""``FreezeModulesHook``: keep some submodules of the model exactly as they were loaded.

For training only part of a network, e.g. steps 3 and 4 of Faster R-CNN's 4-step alternating
training, where the layers the RPN and the R-CNN share (``backbone``, ``neck``) must stay
bit-identical while the heads train. Two things are needed for that, and the hook does both:

- ``requires_grad=False`` on their parameters (before the first iteration): they get no gradient,
  so neither the optimizer step nor weight decay touches them (torch optimizers skip parameters
  whose ``grad`` is None);
- eval mode before every iteration: the train loops call ``model.train()`` (each epoch, after
  validation), which would put their BatchNorms back into updating running statistics.

The hook sets ``requires_grad`` after the Runner has wrapped the model, so under
``MMDistributedDataParallel`` the wrapper needs ``find_unused_parameters=True``; single-process
training (``tools/train_alternating.py``) needs nothing.
"""
from typing import List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from rcnn_plugins.registry import HOOKS


@HOOKS.register_module()
class FreezeModulesHook(Hook):
    """Freeze the named submodules of the model for the whole training run.

    Args:
        modules: attribute paths below the model, e.g. ``('backbone', 'neck')``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, modules: Sequence[str]) -> None:
        if isinstance(modules, str) or not modules:
            raise ValueError(f'FreezeModulesHook: modules must be a non-empty list of names, got {modules!r}')
        self.modules = tuple(modules)
        self._frozen: Optional[List[nn.Module]] = None

    def _resolve(self, runner) -> List[nn.Module]:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        found = []
        for name in self.modules:
            try:
                found.append(model.get_submodule(name))
            except AttributeError as err:
                children = [n for n, _ in model.named_children()]
                raise ValueError(f'FreezeModulesHook: {type(model).__name__} has no submodule {name!r} '
                                 f'(its children: {children})') from err
        return found

    def before_train(self, runner) -> None:
        self._frozen = self._resolve(runner)
        for module in self._frozen:
            module.requires_grad_(False)
            module.eval()
        runner.logger.info(f'FreezeModulesHook: {", ".join(self.modules)} frozen (no gradient, eval mode)')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        for module in self._frozen:
            module.eval()
