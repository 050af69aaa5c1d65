"""Path Aggregation FPN (Liu et al., PANet, 2018), registered as ``'PAFPN'``.

MMDetection 3.x's arguments, defaults and ``state_dict`` keys: FPN's ``lateral_convs`` and
``fpn_convs``, plus ``downsample_convs.{i}.conv.*`` (stride-2 3x3) and ``pafpn_convs.{i}.conv.*``
(3x3) for the bottom-up path.
"""
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule

from rcnn_plugins.registry import MODELS
from .fpn import FPN


@MODELS.register_module()
class PAFPN(FPN):
    """FPN followed by a bottom-up path: each finer output, downsampled by a stride-2 3x3 conv,
    is added to the next coarser one, then a 3x3 conv makes the output of every level but the finest.

    Args: as :class:`FPN` (no ``upsample_cfg``: the top-down path always resizes with ``'nearest'``
    to the finer level's size, as MMDetection's PAFPN does).

    ``forward(inputs)`` takes ``len(in_channels)`` tensors ``(B, in_channels[i], H_i, W_i)`` and returns
    ``num_outs`` tensors ``(B, out_channels, H_l, W_l)``, finest first. The finer level's downsampled
    map must have the coarser level's size (true for the ``ceil(H / 2)`` sizes a backbone makes).
    """

    def __init__(self,
                 in_channels,
                 out_channels: int,
                 num_outs: int,
                 start_level: int = 0,
                 end_level: int = -1,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False,
                 conv_cfg=None,
                 norm_cfg=None,
                 act_cfg=None,
                 init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')):
        super().__init__(in_channels, out_channels, num_outs, start_level, end_level, add_extra_convs,
                         relu_before_extra_convs, no_norm_on_lateral, conv_cfg, norm_cfg, act_cfg,
                         upsample_cfg=dict(mode='nearest'), init_cfg=init_cfg)
        self.downsample_convs = nn.ModuleList()
        self.pafpn_convs = nn.ModuleList()
        for _ in range(self.start_level + 1, self.backbone_end_level):
            self.downsample_convs.append(
                ConvModule(out_channels, out_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg,
                           norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False))
            self.pafpn_convs.append(
                ConvModule(out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                           act_cfg=act_cfg, inplace=False))

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != self.num_ins:
            raise ValueError(f'PAFPN was built for {self.num_ins} input levels (in_channels={self.in_channels}), '
                             f'got {len(inputs)}')
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        used = len(laterals)
        for i in range(used - 1, 0, -1):  # top-down, coarsest first
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:],
                                                              mode='nearest')
        inter = [self.fpn_convs[i](laterals[i]) for i in range(used)]
        for i in range(used - 1):  # bottom-up, finest first: the path PANet adds
            inter[i + 1] = inter[i + 1] + self.downsample_convs[i](inter[i])
        outs = [inter[0]] + [self.pafpn_convs[i - 1](inter[i]) for i in range(1, used)]

        if self.num_outs > used:
            if not self.add_extra_convs:
                for _ in range(self.num_outs - used):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                source = {'on_input': inputs[self.backbone_end_level - 1],
                          'on_lateral': laterals[-1],
                          'on_output': outs[-1]}[self.add_extra_convs]
                outs.append(self.fpn_convs[used](source))
                for i in range(used + 1, self.num_outs):
                    x = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](x))
        return tuple(outs)
