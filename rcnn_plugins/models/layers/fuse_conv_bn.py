"""``fuse_conv_bn``: fold eval-mode BatchNorm into the convolution that feeds it (inference only).

An eval-mode BN is the per-channel affine ``y = x * s + t`` with ``s = weight / sqrt(running_var +
eps)`` and ``t = bias - running_mean * s``. After a convolution ``x = W * z + b`` that is again a
convolution, ``W' = W * s`` (per output channel) and ``b' = b * s + t``: one op instead of two, and
one full read/write of the activation less. Numbers change only by float rounding (~1e-6 relative).

Pairs are found as MMDetection's ``--fuse-conv-bn`` finds them: a ``_BatchNorm`` registered right
after a ``nn.Conv2d`` in the same parent (ResNet's ``conv1``/``bn1``, ``downsample = (conv, bn)``,
mmcv ``ConvModule``'s ``conv``/``bn``, ``nn.Sequential``). That holds when the conv's output feeds
only that BN, as in all of those. The BN becomes ``nn.Identity``, so ``state_dict`` keys change:
fuse after loading the checkpoint, and do not save the fused model as a training checkpoint.
"""
import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold every eval-mode BN that directly follows a ``Conv2d`` into it, in place; returns ``module``.

    Raises ``ValueError`` for a BN in training mode (its output depends on the batch statistics,
    which no fixed convolution reproduces): call ``model.eval()`` first.
    """
    conv_name, conv = None, None
    for name, child in list(module.named_children()):
        if isinstance(child, _BatchNorm) and conv is not None:
            if child.training:
                raise ValueError(f'fuse_conv_bn: {name} ({type(child).__name__}) is in training mode; '
                                 'call model.eval() before fusing')
            if child.track_running_stats:
                setattr(module, conv_name, _fused_conv(conv, child))
                setattr(module, name, nn.Identity())
            conv_name, conv = None, None
        elif isinstance(child, nn.Conv2d):
            conv_name, conv = name, child
        else:
            fuse_conv_bn(child)
            conv_name, conv = None, None
    return module


@torch.no_grad()
def _fused_conv(conv: nn.Conv2d, bn: _BatchNorm) -> nn.Conv2d:
    """A copy of ``conv`` (weight (C_out, C_in / groups, kh, kw), bias (C_out,) or None) that
    computes ``bn(conv(x))``; computed in float64 so the fold itself adds no rounding."""
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.affine:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.affine:
        shift = shift + bn.bias.double()
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    # A deep copy keeps the conv's class (mmcv conv subclasses) and its settings.
    fused = copy.deepcopy(conv)
    dtype = conv.weight.dtype
    fused.weight = nn.Parameter((conv.weight.double() * scale[:, None, None, None]).to(dtype), requires_grad=False)
    fused.bias = nn.Parameter((bias * scale + shift).to(dtype), requires_grad=False)
    return fused
