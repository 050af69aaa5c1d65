"""Train-mode rules the backbones share: frozen stages stay frozen and, with ``norm_eval``, every
BatchNorm keeps its running statistics (eval mode) while the rest of the network trains."""
from typing import Iterable

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def freeze(modules: Iterable[nn.Module]) -> None:
    """Eval mode and no gradients for ``modules`` (the stem and the first ``frozen_stages``)."""
    for module in modules:
        module.eval()
        for param in module.parameters():
            param.requires_grad = False


def batchnorms_to_eval(module: nn.Module) -> None:
    """Every BatchNorm inside ``module`` to eval mode (``norm_eval=True``: batch statistics of
    small detection batches would be worse than the pretrained running ones)."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.eval()
