"""Transitions between pyramid levels of the Feature Pyramid Grid (``FPG``).

Not registered: :class:`rcnn_plugins.models.necks.fpg.FPG` builds them from its ``*_trans`` configs
(``type`` ``'conv'`` -> mmcv ``ConvModule``, ``'interpolation_conv'``, ``'last_conv'``,
``'identity'``). Module names are MMDetection's (``conv.*``, ``conv_out.*``).
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule


class UpInterpolationConv(BaseModule):
    """Upsample by ``scale_factor`` (``F.interpolate``), then a ``ConvModule`` (``kernel_size``, same
    padding; ``**kwargs`` such as ``norm_cfg``, ``order``). ``(B, C_in, H, W) -> (B, C_out, sH, sW)``."""

    def __init__(self, in_channels: int, out_channels: int, scale_factor: float = 2, mode: str = 'nearest',
                 align_corners: Optional[bool] = None, kernel_size: int = 3, init_cfg=None, **kwargs):
        super().__init__(init_cfg)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.mode = mode
        self.scale_factor = scale_factor
        self.align_corners = align_corners
        self.conv = ConvModule(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode, align_corners=self.align_corners)
        return self.conv(x)


class LastConv(BaseModule):
    """Output transition: a ``ConvModule`` on the last of ``num_inputs`` maps of one level (the
    grid's last column). ``forward(list of num_inputs (B, C_in, H, W)) -> (B, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, num_inputs: int, kernel_size: int = 3, init_cfg=None,
                 **kwargs):
        super().__init__(init_cfg)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_inputs = num_inputs
        self.conv_out = ConvModule(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2, **kwargs)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != self.num_inputs:
            raise ValueError(f'LastConv expects {self.num_inputs} maps (one per grid column), got {len(inputs)}')
        return self.conv_out(inputs[-1])


class Identity(BaseModule):
    """``across_skip_trans=dict(type='identity')``: the map unchanged (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, init_cfg=None):
        super().__init__(init_cfg)
        if in_channels != out_channels:
            raise ValueError(f'FPG identity transition needs equal channels, got {in_channels} -> {out_channels}')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
