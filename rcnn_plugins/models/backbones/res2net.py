"""Res2Net (Gao et al., 2019), registered as ``'Res2Net'``: the 3x3 conv of each Bottleneck is split
into ``scales`` channel groups processed hierarchically (multi-scale features inside one block).

MMDetection's arguments and keys: ``conv1`` (``width * scales`` channels, ``width =
floor(planes * base_width / base_channels)``), ``convs.{0..scales-2}`` / ``bns.{..}`` (3x3 conv and
norm of every group but the last), ``conv3``; deep stem and average-pool shortcuts (as ResNetV1d).
"""
import math

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer

from rcnn_plugins.registry import MODELS
from .resnet import ResNet
from .resnet_blocks import Bottleneck, ResLayer


class Bottle2neck(Bottleneck):
    """Res2Net block.

    Group ``i`` of the ``conv1`` output (``width`` channels each) goes through ``convs[i]`` after
    adding the previous group's result (``stage_type='normal'``) or on its own (``'stage'``, the
    first block of a stage); the last group is passed through unchanged (``'normal'`` or stride 1)
    or average-pooled to the stride (``'stage'``). ``dcn`` replaces every 3x3 conv of the groups.

    ``forward(x (B, inplanes, H, W)) -> (B, 4 * planes, H / stride, W / stride)``.
    """

    def __init__(self, inplanes: int, planes: int, scales: int = 4, base_width: int = 26,
                 base_channels: int = 64, stage_type: str = 'normal', **kwargs):
        if scales < 2:
            raise ValueError(f'Res2Net: scales must be > 1 (scales=1 is a plain ResNet), got {scales}')
        if stage_type not in ('normal', 'stage'):
            raise ValueError(f"Res2Net: stage_type must be 'normal' or 'stage', got {stage_type!r}")
        self.scales, self.stage_type = scales, stage_type
        self.width = int(math.floor(planes * (base_width / base_channels)))
        super().__init__(inplanes, planes, **kwargs)

    def _width(self) -> int:
        return self.width * self.scales

    def _make_conv2(self, width: int, groups: int = 1) -> None:
        if self.stage_type == 'stage' and self.conv2_stride != 1:
            self.pool = nn.AvgPool2d(kernel_size=3, stride=self.conv2_stride, padding=1)
        cfg = self._conv2_cfg()
        self.convs = nn.ModuleList(
            build_conv_layer(cfg, self.width, self.width, 3, stride=self.conv2_stride, padding=self.dilation,
                             dilation=self.dilation, bias=False) for _ in range(self.scales - 1))
        self.bns = nn.ModuleList(
            build_norm_layer(self.norm_cfg, self.width, postfix=i + 1)[1] for i in range(self.scales - 1))

    def _conv2_forward(self, out: torch.Tensor) -> torch.Tensor:
        spx = torch.split(out, self.width, 1)
        sp = self.relu(self.bns[0](self.convs[0](spx[0].contiguous())))
        outs = [sp]
        for i in range(1, self.scales - 1):
            sp = spx[i] if self.stage_type == 'stage' else sp + spx[i]
            sp = self.relu(self.bns[i](self.convs[i](sp.contiguous())))
            outs.append(sp)
        last = spx[self.scales - 1]
        if self.stage_type == 'stage' and self.conv2_stride != 1:
            last = self.pool(last)
        return torch.cat(outs + [last], 1)


@MODELS.register_module()
class Res2Net(ResNet):
    """Res2Net-50/101/152 (the v1d variant: deep stem, average-pool shortcuts, ``style='pytorch'``).

    Args:
        scales: groups the 3x3 stage is split into.
        base_width: channels per group in the first stage.
        **kwargs: ResNet's arguments. ``style``, ``deep_stem`` and ``avg_down`` are accepted for
            MMDetection's signature and, as there, ignored (always pytorch / True / True).

    ``forward(x (B, 3, H, W))`` returns ResNet's feature tuple.
    """
    arch_settings = {
        50: (Bottle2neck, (3, 4, 6, 3)),
        101: (Bottle2neck, (3, 4, 23, 3)),
        152: (Bottle2neck, (3, 8, 36, 3)),
    }

    def __init__(self, scales: int = 4, base_width: int = 26, style: str = 'pytorch', deep_stem: bool = True,
                 avg_down: bool = True, **kwargs):
        self.scales, self.base_width = scales, base_width
        super().__init__(style='pytorch', deep_stem=True, avg_down=True, **kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        # Res2Net always pools in the shortcut, and the first block of a stage is a 'stage' block.
        kwargs['avg_down'] = True
        return ResLayer(scales=self.scales, base_width=self.base_width, base_channels=self.base_channels,
                        first_block_kwargs=dict(stage_type='stage'), **kwargs)
