"""``DivergenceGuardHook``: stop (or skip the batch, or lower the LR) when training diverges.

A diverging run otherwise trains on in NaNs for days: once one step writes NaN into the weights
every later loss is NaN, and every later checkpoint is worthless. This hook, on by default in
``configs/_base_/default_runtime.py`` (``default_hooks.divergence_guard``), checks each
iteration, BEFORE the optimizer step:

- the summed loss that ``train_step`` hands to ``optim_wrapper.update_params``: one
  ``torch.isfinite`` on a scalar, i.e. one host sync per iteration (mmengine's RuntimeInfoHook
  already syncs every loss term each iteration to log it); per-term values are looked at only
  once something went wrong;
- with ``max_grad_norm`` set, the total L2 norm of the gradients after backward (one fused norm
  over all gradients and one more sync). Without ``clip_grad`` a norm above ``max_grad_norm``, or
  a non-finite one, counts as an explosion; with ``clip_grad`` the norm is clipped anyway, so only
  a non-finite norm does. Skipped under ``AmpOptimWrapper``, whose loss scaler expects and
  skips inf gradients itself.

To run before the step the hook wraps the ``update_params`` and ``step`` methods of the runner's
optimizer wrapper(s) in ``before_train`` (the model's ``train_step`` calls them); a bad iteration
gets neither backward nor step, so the weights stay those of the last good iteration.

What happens then (``action``):

- ``'stop'`` (default): log and raise :class:`DivergenceError` naming the iteration, the loss
  terms that went bad (or the gradient norm), the image files of the batch and what to change.
  The exception fires in ``after_train_iter`` before ``CheckpointHook`` runs, so no checkpoint is
  written over the last good one; ``tools/train.py`` prints the message and exits with status 1.
- ``'skip'``: drop the batch (no optimizer step), log a warning and go on. Its losses are not
  logged, so one bad batch does not turn the logged averages into NaN.
- ``'lower_lr'``: as ``'skip'``, and divide every parameter group's learning rate by
  ``lr_factor`` (schedulers continue from the lowered value).

With ``'skip'`` or ``'lower_lr'``, ``max_consecutive`` bad iterations in a row stop the run as
``'stop'`` does: by then the model, not one batch, is broken. In distributed runs the loss check
is agreed over all ranks (one ``all_reduce`` of a flag), so all ranks skip or stop together
instead of one rank hanging in DDP's gradient all-reduce.
"""
import math
from typing import List, Optional, Sequence

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.optim import AmpOptimWrapper, OptimWrapperDict

from rcnn_plugins.registry import HOOKS

#: What the messages suggest (MMDetection's usual value for Faster R-CNN).
CLIP_GRAD_ADVICE = 'optim_wrapper.clip_grad=dict(max_norm=35, norm_type=2)'


class DivergenceError(RuntimeError):
    """Training diverged (non-finite loss or exploding gradients); the message says where and why."""


@HOOKS.register_module()
class DivergenceGuardHook(Hook):
    """Check losses (and gradient norms) every iteration; see the module docstring.

    Args:
        action: ``'stop'``, ``'skip'`` or ``'lower_lr'``: what a bad iteration does.
        lr_factor: ``'lower_lr'`` divides the learning rates by this (> 1).
        max_grad_norm: gradient L2 norm (over all parameters) above which gradients count as
            exploding when ``clip_grad`` is not configured; ``None`` turns the gradient check off.
        max_consecutive: bad iterations in a row after which ``'skip'`` / ``'lower_lr'`` stop.
    """

    # Before RuntimeInfoHook (VERY_HIGH), so a skipped batch's losses can be kept out of the logs.
    priority = 'HIGHEST'

    def __init__(self, action: str = 'stop', lr_factor: float = 10., max_grad_norm: Optional[float] = 1e4,
                 max_consecutive: int = 10) -> None:
        if action not in ('stop', 'skip', 'lower_lr'):
            raise ValueError(f"DivergenceGuardHook: action must be 'stop', 'skip' or 'lower_lr', not {action!r}")
        if lr_factor <= 1:
            raise ValueError(f'DivergenceGuardHook: lr_factor must be > 1, not {lr_factor}')
        self.action = action
        self.lr_factor = lr_factor
        self.max_grad_norm = max_grad_norm
        self.max_consecutive = max_consecutive
        self._bad: Optional[str] = None   # what went wrong in the current iteration
        self._consecutive = 0

    # ---- checks, run from inside train_step ----------------------------------------------------

    def before_train(self, runner) -> None:
        wrappers = runner.optim_wrapper
        for wrapper in (wrappers.values() if isinstance(wrappers, OptimWrapperDict) else [wrappers]):
            self._guard(wrapper)

    def _guard(self, wrapper) -> None:
        update_params, step = wrapper.update_params, wrapper.step
        clip = bool(getattr(wrapper, 'clip_grad_kwargs', None))
        check_grads = self.max_grad_norm is not None and not isinstance(wrapper, AmpOptimWrapper)

        def guarded_update_params(loss: torch.Tensor, *args, **kwargs):
            finite = torch.isfinite(loss.detach()).all().to(torch.float32)
            if get_world_size() > 1:
                all_reduce(finite, op='min')   # every rank skips, or none does
            if not bool(finite):               # the one host sync of the check
                self._bad = 'loss'
                return None                    # no backward, no step
            return update_params(loss, *args, **kwargs)

        def guarded_step(**kwargs):
            if check_grads:
                grads = [p.grad for group in wrapper.optimizer.param_groups for p in group['params']
                         if p.grad is not None]
                norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.
                if not math.isfinite(norm) or (not clip and norm > self.max_grad_norm):
                    self._bad = f'gradient norm {norm:.4g}' + (
                        f' > max_grad_norm={self.max_grad_norm:g}' if math.isfinite(norm) else '')
                    return None                # update_params zeroes the gradients next
            return step(**kwargs)

        wrapper.update_params = guarded_update_params
        wrapper.step = guarded_step

    # ---- reaction, after the iteration ---------------------------------------------------------

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._bad is None:
            self._consecutive = 0
            return
        bad, self._bad = self._bad, None
        self._consecutive += 1
        outputs = outputs if outputs is not None else {}
        where = f'iteration {runner.iter + 1}' + (
            f' (epoch {runner.epoch + 1})' if getattr(runner.train_loop, 'max_epochs', None) else '')
        terms = ', '.join(f'{name}={float(value.detach()):.4g}' for name, value in outputs.items()
                          if torch.is_tensor(value) and not bool(torch.isfinite(value).all()))
        if bad == 'loss':
            what = f'non-finite loss at {where}: {terms or "loss"}'
            advice = ('lower optim_wrapper.optimizer.lr, lengthen the warm-up, or clip gradients with '
                      f'{CLIP_GRAD_ADVICE}; if it is always the same images, check their annotations')
        else:
            what = f'gradients exploded at {where}: {bad}'
            advice = (f'clip gradients with {CLIP_GRAD_ADVICE}, or lower optim_wrapper.optimizer.lr '
                      '(raise default_hooks.divergence_guard.max_grad_norm if such norms are expected)')
        what += f'; batch images: {", ".join(_image_paths(data_batch)) or "(no img_path in the batch)"}'
        # Keep this iteration's values out of the logged (windowed) averages.
        outputs.clear()

        if self.action == 'stop' or self._consecutive >= self.max_consecutive:
            repeated = '' if self.action == 'stop' else f' ({self._consecutive} bad iterations in a row)'
            last = runner.message_hub.get_info('last_ckpt')
            kept = f'the last checkpoint, {last}, is kept as it was' if last else 'no checkpoint was written'
            message = f'Training stopped{repeated}: {what}. No optimizer step was taken; {kept}. Fix: {advice}.'
            runner.logger.error(message)
            raise DivergenceError(message)
        if self.action == 'lower_lr':
            for group in _param_groups(runner.optim_wrapper):
                group['lr'] /= self.lr_factor
            runner.logger.warning(f'{what}. Batch skipped and learning rates divided by {self.lr_factor:g}.')
        else:
            runner.logger.warning(f'{what}. Batch skipped (no optimizer step).')


def _image_paths(data_batch) -> List[str]:
    samples: Sequence = data_batch.get('data_samples', []) if isinstance(data_batch, dict) else []
    return [str(s.img_path) for s in samples if 'img_path' in getattr(s, 'metainfo', {})]


def _param_groups(wrappers) -> List[dict]:
    wrappers = wrappers.values() if isinstance(wrappers, OptimWrapperDict) else [wrappers]
    return [group for wrapper in wrappers for group in wrapper.optimizer.param_groups]
