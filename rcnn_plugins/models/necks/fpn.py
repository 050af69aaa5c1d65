"""Feature Pyramid Network (Lin et al., 2017), registered as ``'FPN'``.

Arguments, defaults and ``state_dict`` keys (``lateral_convs.{i}.conv.*``, ``fpn_convs.{i}.conv.*``)
are MMDetection 3.x's, so MMDetection Faster R-CNN / RetinaNet checkpoints load unchanged.
"""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from rcnn_plugins.registry import MODELS

_INTERPOLATE_KEYS = {'mode', 'scale_factor', 'align_corners', 'recompute_scale_factor', 'antialias'}
_INTERPOLATE_MODES = ('nearest', 'linear', 'bilinear', 'bicubic', 'trilinear', 'area', 'nearest-exact')


def _check_upsample_cfg(cfg: dict) -> None:
    """Fail at build time, not at the first forward, on what ``F.interpolate`` would refuse."""
    unknown = set(cfg) - _INTERPOLATE_KEYS
    if unknown:
        raise ValueError(f'FPN upsample_cfg: unknown keys {sorted(unknown)}; it holds F.interpolate arguments '
                         f'{sorted(_INTERPOLATE_KEYS)}, e.g. dict(mode="nearest")')
    if cfg.get('mode', 'nearest') not in _INTERPOLATE_MODES:
        raise ValueError(f"FPN upsample_cfg: mode {cfg['mode']!r} is not an F.interpolate mode; "
                         f'use one of {_INTERPOLATE_MODES}')


@MODELS.register_module()
class FPN(BaseModule):
    """Top-down pathway with lateral 1x1 convs, a 3x3 conv per level and optional extra levels.

    Args:
        in_channels: channels of each backbone level, finest first (e.g. ``[256, 512, 1024, 2048]``).
        out_channels: channels of every output level.
        num_outs: number of output levels; levels beyond the used backbone levels are extra ones,
            made by stride-2 max pooling (``add_extra_convs=False``) or by stride-2 3x3 convs.
        start_level: first backbone level used.
        end_level: last backbone level used (-1: the last one). Extra levels need ``end_level=-1``.
        add_extra_convs: ``False``, or the source of the first extra conv: ``'on_input'`` (last used
            backbone level), ``'on_lateral'`` (its lateral) or ``'on_output'`` (its FPN output);
            ``True`` means ``'on_input'``. Later extra convs take the previous extra level.
        relu_before_extra_convs: ReLU on the input of every extra conv after the first.
        no_norm_on_lateral: no norm layer in the lateral convs even when ``norm_cfg`` is set.
        conv_cfg, norm_cfg, act_cfg: given to ``mmcv.cnn.ConvModule`` (``act_cfg=None``: no activation).
        upsample_cfg: keyword arguments of ``F.interpolate`` for the top-down pathway; without
            ``scale_factor`` the coarser level is resized to the finer level's exact size.
        init_cfg: mmengine init config (default: Xavier-uniform convs, as MMDetection).

    ``forward(inputs)`` takes ``len(in_channels)`` tensors ``(B, in_channels[i], H_i, W_i)`` and returns
    ``num_outs`` tensors ``(B, out_channels, H_l, W_l)``, finest first; each extra level halves the
    previous one (``ceil`` for the convs, ``ceil`` too for 1x1 max pooling with stride 2).
    """

    def __init__(self,
                 in_channels: List[int],
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
                 upsample_cfg: dict = dict(mode='nearest'),
                 init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')):
        super().__init__(init_cfg)
        if not isinstance(in_channels, Sequence) or isinstance(in_channels, str) or not in_channels:
            raise TypeError(f'in_channels must be a non-empty list of ints, got {in_channels!r}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.no_norm_on_lateral = no_norm_on_lateral
        self.upsample_cfg = dict(upsample_cfg)
        _check_upsample_cfg(self.upsample_cfg)

        if not 0 <= start_level < self.num_ins:
            raise ValueError(f'start_level must be in 0..{self.num_ins - 1}, got {start_level}')
        if end_level == -1 or end_level == self.num_ins - 1:
            self.backbone_end_level = self.num_ins
            if num_outs < self.num_ins - start_level:
                raise ValueError(f'num_outs={num_outs} is less than the {self.num_ins - start_level} backbone '
                                 f'levels used (start_level={start_level}); raise num_outs or start_level')
        else:
            # A truncated pyramid has no extra levels.
            if not start_level <= end_level < self.num_ins:
                raise ValueError(f'end_level must be -1 or in {start_level}..{self.num_ins - 1}, got {end_level}')
            if num_outs != end_level - start_level + 1:
                raise ValueError(f'with end_level={end_level}, num_outs must be end_level - start_level + 1 = '
                                 f'{end_level - start_level + 1}, got {num_outs}')
            self.backbone_end_level = end_level + 1
        self.start_level = start_level
        self.end_level = end_level

        if add_extra_convs is True:
            add_extra_convs = 'on_input'
        if add_extra_convs not in (False, 'on_input', 'on_lateral', 'on_output'):
            raise ValueError("add_extra_convs must be False, True, 'on_input', 'on_lateral' or 'on_output', "
                             f'got {add_extra_convs!r}')
        self.add_extra_convs = add_extra_convs

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(
                ConvModule(in_channels[i], out_channels, 1, conv_cfg=conv_cfg,
                           norm_cfg=None if no_norm_on_lateral else norm_cfg, act_cfg=act_cfg, inplace=False))
            self.fpn_convs.append(
                ConvModule(out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                           act_cfg=act_cfg, inplace=False))

        extra_levels = num_outs - self.backbone_end_level + start_level
        if add_extra_convs:
            for i in range(extra_levels):
                in_ch = (in_channels[self.backbone_end_level - 1]
                         if i == 0 and add_extra_convs == 'on_input' else out_channels)
                self.fpn_convs.append(
                    ConvModule(in_ch, out_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                               act_cfg=act_cfg, inplace=False))

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != self.num_ins:
            raise ValueError(f'FPN was built for {self.num_ins} input levels (in_channels={self.in_channels}), '
                             f'got {len(inputs)}')
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]

        # Top-down: add each coarser lateral, upsampled, to the next finer one (coarsest first).
        for i in range(len(laterals) - 1, 0, -1):
            if 'scale_factor' in self.upsample_cfg:
                up = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + up

        used = len(laterals)
        outs = [self.fpn_convs[i](laterals[i]) for i in range(used)]
        if self.num_outs > used:
            if not self.add_extra_convs:
                # Max pooling with a 1x1 kernel and stride 2 is plain subsampling (P6 of Faster R-CNN).
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
