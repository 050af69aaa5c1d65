"""Modulated deformable convolution, DCNv2 (Zhu et al., 2019), on ``torchvision.ops.deform_conv2d``
with its ``mask`` argument, registered as ``'DCNv2'`` (mmcv's name for ``ModulatedDeformConv2dPack``).

``state_dict`` keys are mmcv's: ``weight``, ``bias`` (on by default, as mmcv) and
``conv_offset.{weight,bias}`` predicting ``3 * deform_groups * kh * kw`` channels, zero-initialised.
"""
import math

import torch
import torch.nn as nn

from .conv_registry import register_conv_layer
from .deform_conv import DeformConv2dPack


@register_conv_layer('DCNv2')
@register_conv_layer('ModulatedDeformConv2dPack')  # mmcv registers both names
class ModulatedDeformConv2dPack(DeformConv2dPack):
    """DCN whose every sample is also scaled by a learned mask in (0, 1).

    ``conv_offset(x)`` is split in three equal chunks ``o1, o2, m`` along channels (mmcv's order):
    the offset is ``cat(o1, o2)`` (``(B, 2*dg*kh*kw, H_out, W_out)``, ``(dy, dx)`` per tap) and the
    mask ``sigmoid(m)`` (``(B, dg*kh*kw, H_out, W_out)``); a fresh layer (zero ``conv_offset``) is a
    plain conv scaled by 0.5.

    ``forward(x (B, in_channels, H, W)) -> (B, out_channels, H_out, W_out)``.
    """

    def __init__(self, *args, bias: bool = True, **kwargs):
        super().__init__(*args, bias=bias, **kwargs)

    def reset_parameters(self) -> None:
        """mmcv's ModulatedDeformConv2d init: weight ~ U(-1/sqrt(n), 1/sqrt(n)), n = in_channels*kh*kw."""
        stdv = 1. / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -stdv, stdv)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self.init_offset()

    def _offset_channels(self) -> int:
        return self.deform_groups * 3 * self.kernel_size[0] * self.kernel_size[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1, o2, mask = torch.chunk(self.conv_offset(x), 3, dim=1)
        return self.deform_forward(x, torch.cat((o1, o2), dim=1), torch.sigmoid(mask))
