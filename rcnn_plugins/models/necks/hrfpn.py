"""HRNet's feature pyramid (Sun et al., "High-Resolution Representations for Labeling Pixels and
Regions", 2019), registered as ``'HRFPN'``.

MMDetection 3.x's arguments, defaults and ``state_dict`` keys (``reduction_conv.conv.*``,
``fpn_convs.{i}.conv.*``). As in MMDetection, ``norm_cfg`` is stored but not applied: the convs
have a bias and no norm layer, so MMDetection's HRNet checkpoints load.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.utils.checkpoint import checkpoint

from rcnn_plugins.registry import MODELS


@MODELS.register_module()
class HRFPN(BaseModule):
    """Concatenate every HRNet branch upsampled (bilinear, ``2**i``) to the finest one, reduce to
    ``out_channels`` with a 1x1 conv, pool that map by ``2**i`` for level ``i`` and apply a 3x3 conv
    per level.

    Args:
        in_channels: channels of each branch, finest first (e.g. ``[18, 36, 72, 144]``).
        out_channels: channels of every output level.
        num_outs: number of output levels.
        pooling_type: ``'MAX'`` or ``'AVG'`` (anything else is average, as MMDetection).
        conv_cfg: given to the convs. norm_cfg: kept for config compatibility, not used.
        with_cp: activation checkpointing of the convs while training (memory for time).
        stride: stride of the 3x3 output convs.
        init_cfg: mmengine init config (default: Caffe2-Xavier convs, as MMDetection).

    ``forward(inputs)``: tensors ``(B, in_channels[i], H / 2**i, W / 2**i)`` -> ``num_outs`` tensors
    ``(B, out_channels, H / 2**l, W / 2**l)`` (floor division for the pooled levels).
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int = 5,
                 pooling_type: str = 'AVG',
                 conv_cfg=None,
                 norm_cfg=None,
                 with_cp: bool = False,
                 stride: int = 1,
                 init_cfg=dict(type='Caffe2Xavier', layer='Conv2d')):
        super().__init__(init_cfg)
        if not isinstance(in_channels, Sequence) or isinstance(in_channels, str) or not in_channels:
            raise TypeError(f'HRFPN: in_channels must be a non-empty list of ints, got {in_channels!r}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.with_cp = with_cp
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.reduction_conv = ConvModule(sum(in_channels), out_channels, kernel_size=1, conv_cfg=conv_cfg,
                                         act_cfg=None)
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, kernel_size=3, padding=1, stride=stride, conv_cfg=conv_cfg,
                       act_cfg=None) for _ in range(num_outs))
        self.pooling = F.max_pool2d if pooling_type == 'MAX' else F.avg_pool2d

    def _run(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return checkpoint(module, x, use_reentrant=False)
        return module(x)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != self.num_ins:
            raise ValueError(f'HRFPN was built for {self.num_ins} branches (in_channels={self.in_channels}), '
                             f'got {len(inputs)}')
        ups = [inputs[0]] + [F.interpolate(x, scale_factor=2 ** i, mode='bilinear')
                             for i, x in enumerate(inputs) if i > 0]
        out = self._run(self.reduction_conv, torch.cat(ups, dim=1))
        levels = [out] + [self.pooling(out, kernel_size=2 ** i, stride=2 ** i) for i in range(1, self.num_outs)]
        return tuple(self._run(conv, x) for conv, x in zip(self.fpn_convs, levels))
