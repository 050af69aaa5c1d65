"""Deformable convolution v1 (Dai et al., 2017) on ``torchvision.ops.deform_conv2d``, registered as
``'DCN'`` (mmcv's name for ``DeformConv2dPack``).

Parameters and ``state_dict`` keys are mmcv's ``DeformConv2dPack``: ``weight`` (out, in / groups,
kh, kw), optional ``bias`` (off by default, as mmcv) and ``conv_offset.{weight,bias}``, the plain
conv that predicts the offsets, zero-initialised so a fresh layer starts as an ordinary conv.
No compiled mmcv.ops needed: torchvision's op runs on CPU and CUDA and is differentiable in the
input, the offsets and the weights.
"""
from typing import Tuple, Union

import torch
import torch.nn as nn
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d

from .conv_registry import register_conv_layer

IntPair = Union[int, Tuple[int, int]]


def safe_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias=None, stride=(1, 1),
                       padding=(0, 0), dilation=(1, 1), mask=None) -> torch.Tensor:
    """``torchvision.ops.deform_conv2d`` that survives NaN offsets.

    torchvision's CPU kernel crashes the process (segmentation fault) when offsets are NaN, which
    happens once a diverging training run produces NaN activations; a crash would hide the
    divergence from every hook. NaN offsets are sampled as 0 and the whole output is made NaN
    (no host sync), so the run fails the way any other NaN does.

    The CPU kernel has no bf16 / fp16 version (CPU autocast, ``--amp``, hands it bf16 features):
    there the op runs in float32 and its output is cast back to ``x``'s dtype.
    """
    if x.device.type == 'cpu' and x.dtype in (torch.bfloat16, torch.float16):
        with torch.autocast('cpu', enabled=False):
            out = safe_deform_conv2d(x.float(), offset.float(), weight.float(),
                                     None if bias is None else bias.float(), stride, padding, dilation,
                                     None if mask is None else mask.float())
        return out.to(x.dtype)
    has_nan = torch.isnan(offset).any()
    out = deform_conv2d(x, torch.nan_to_num(offset.to(x.dtype), nan=0.0), weight, bias, stride=stride,
                        padding=padding, dilation=dilation, mask=None if mask is None else mask.to(x.dtype))
    return out + torch.where(has_nan, float('nan'), 0.0).to(out.dtype)


@register_conv_layer('DCN')
@register_conv_layer('DeformConv2dPack')  # mmcv registers both names
class DeformConv2dPack(nn.Module):
    """Conv whose sampling grid is shifted per output location by learned offsets.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: as ``nn.Conv2d``.
        deform_groups: channel groups that each get their own offset field.
        bias: learnable bias of the deformable conv (mmcv's default: False).
        im2col_step: accepted for mmcv compatibility; torchvision's op needs no batching step.

    ``forward(x (B, in_channels, H, W)) -> (B, out_channels, H_out, W_out)`` with the output size
    of ``nn.Conv2d``. The offset field ``(B, 2 * deform_groups * kh * kw, H_out, W_out)`` holds,
    for each kernel tap in row-major order, a ``(dy, dx)`` pair in input pixels (mmcv's layout,
    which is also torchvision's).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1, deform_groups: int = 1,
                 bias: bool = False, im2col_step: int = 32):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f'DCN: in_channels {in_channels} and out_channels {out_channels} must be '
                             f'divisible by groups {groups}')
        if in_channels % deform_groups:
            raise ValueError(f'DCN: in_channels {in_channels} must be divisible by deform_groups {deform_groups}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.groups, self.deform_groups = groups, deform_groups
        self.im2col_step = im2col_step
        self.transposed, self.output_padding = False, _pair(0)  # read by mmcv's ConvModule helpers
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.conv_offset = nn.Conv2d(in_channels, self._offset_channels(), self.kernel_size, stride=self.stride,
                                     padding=self.padding, dilation=self.dilation, bias=True)
        self.reset_parameters()

    def _offset_channels(self) -> int:
        return self.deform_groups * 2 * self.kernel_size[0] * self.kernel_size[1]

    def reset_parameters(self) -> None:
        """mmcv's DeformConv2d init: Kaiming-uniform weight (ReLU gain), zero bias and offsets."""
        nn.init.kaiming_uniform_(self.weight, nonlinearity='relu')
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self.init_offset()

    def init_offset(self) -> None:
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def init_weights(self) -> None:
        """Called by mmengine after a parent's ``init_cfg`` (e.g. ResNet's Kaiming over every
        ``Conv2d``, which includes ``conv_offset``): the offsets go back to zero, so a new DCN starts
        as its plain conv. The weight keeps the parent's init."""
        self.init_offset()

    def deform_forward(self, x: torch.Tensor, offset: torch.Tensor, mask=None) -> torch.Tensor:
        """The deformable conv with a given offset ``(B, 2*dg*kh*kw, H_out, W_out)`` and optional
        mask ``(B, dg*kh*kw, H_out, W_out)`` (each sample is multiplied by its mask value)."""
        return safe_deform_conv2d(x, offset, self.weight, self.bias, stride=self.stride, padding=self.padding,
                                  dilation=self.dilation, mask=mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deform_forward(x, self.conv_offset(x))

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}, groups={self.groups}, '
                f'deform_groups={self.deform_groups}, bias={self.bias is not None}')
