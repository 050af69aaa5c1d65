"""Benchmark variants: the same tricks applied to both models, so each row compares like with like.

``fp32``       eager float32, the models as built.
``fp32-fast``  the fast path: channels-last tensors and weights; for inference also BN folded into
               the convolutions (ours: ``prepare_for_inference``; torchvision: its
               FrozenBatchNorm2d layers turned into eval BatchNorm2d and folded by the same
               ``fuse_conv_bn``). Training keeps the BN layers (folding changes what is trained).
``amp``        autocast as built: bf16 on a CPU, fp16 on a GPU.
``amp-fast``   both.
"""
import copy
from typing import Tuple

import torch
from torch import nn

VARIANTS = ('fp32', 'fp32-fast', 'amp', 'amp-fast')


def parse_variant(variant: str) -> Tuple[bool, bool]:
    """``(amp, fast)`` of a variant name."""
    if variant not in VARIANTS:
        raise ValueError(f'unknown variant {variant!r}; choose from {VARIANTS}')
    return variant.startswith('amp'), variant.endswith('-fast')


def variant_label(variant: str, device: str) -> str:
    """The variant with the autocast dtype spelled out (``amp`` -> ``bf16`` on CPU, ``fp16`` on GPU)."""
    return variant.replace('amp', 'fp16' if str(device).startswith('cuda') else 'bf16')


def _tv_frozen_bn_to_bn(module: nn.Module) -> nn.Module:
    """torchvision's FrozenBatchNorm2d (a plain Module) -> eval ``nn.BatchNorm2d`` with the same
    numbers, in place, so ``fuse_conv_bn`` folds it."""
    from torchvision.ops.misc import FrozenBatchNorm2d as TVFrozenBN
    for name, child in module.named_children():
        if isinstance(child, TVFrozenBN):
            bn = nn.BatchNorm2d(child.weight.numel(), eps=child.eps).to(child.weight.device)
            with torch.no_grad():
                for key in ('weight', 'bias', 'running_mean', 'running_var'):
                    getattr(bn, key).copy_(getattr(child, key))
            bn.requires_grad_(False)
            setattr(module, name, bn.eval())
        else:
            _tv_frozen_bn_to_bn(child)
    return module


def apply_variant(name: str, model: nn.Module, variant: str, kind: str) -> nn.Module:
    """The model to time for ``variant`` and ``kind`` ('infer' or 'train'): ``model`` itself for
    the eager variants, else a fast-path copy (the original is left as it is)."""
    from rcnn_plugins.models.fast_inference import prepare_for_inference
    from rcnn_plugins.models.layers import fuse_conv_bn
    _, fast = parse_variant(variant)
    if not fast:
        return model
    model = copy.deepcopy(model)
    if name == 'ours':
        if kind == 'infer':
            return prepare_for_inference(model, fuse_conv_bn=True, channels_last=True)
        model.data_preprocessor.channels_last = True
        return model.to(memory_format=torch.channels_last)
    if kind == 'infer':
        fuse_conv_bn(_tv_frozen_bn_to_bn(model.eval()))
    # Channels-last weights make every convolution's output channels-last too, from the first one.
    return model.to(memory_format=torch.channels_last)
