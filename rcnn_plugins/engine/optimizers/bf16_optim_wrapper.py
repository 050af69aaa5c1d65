"""``BF16OptimWrapper``: mixed-precision training on CPU, the CPU counterpart of ``AmpOptimWrapper``.

mmengine's ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU device, so ``dtype='bfloat16'`` cannot reach
a CPU through it. This wrapper runs the forward pass (and so the loss) under
``torch.autocast('cpu', dtype=torch.bfloat16)``: convolutions and linear layers compute in bf16
(AVX-512 BF16 / AMX kernels, ~2x the fp32 throughput on such a CPU), parameters, gradients and the
optimizer state stay float32. bf16 has float32's exponent range, so no loss scaling is needed.

Only where ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is True: elsewhere (AVX2-only CPUs)
bf16 convolutions are emulated and run ~400x slower, so building the wrapper fails with that reason.
``tools/train.py --amp`` picks it on a CPU-only machine; in a config::

    optim_wrapper = dict(type='BF16OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from rcnn_plugins.registry import OPTIM_WRAPPERS


def cpu_bf16_supported() -> bool:
    """Whether this CPU has native bf16 kernels (oneDNN with AVX-512 BF16 or AMX)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(OptimWrapper):
    """``OptimWrapper`` (same arguments) whose ``optim_context`` adds CPU bf16 autocast."""

    def __init__(self, *args, **kwargs) -> None:
        if not cpu_bf16_supported():
            raise RuntimeError('BF16OptimWrapper: this CPU has no native bf16 support (AVX-512 BF16 or AMX; '
                               'torch.ops.mkldnn._is_mkldnn_bf16_supported() is False), where bf16 '
                               'convolutions are emulated and ~400x slower than float32. Train in float32 '
                               '(type=OptimWrapper, or without --amp).')
        super().__init__(*args, **kwargs)

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield
