"""RegNetX backbone (Radosavovic et al., "Designing Network Design Spaces", 2020), registered as
``'RegNet'``.

MMDetection 3.x's arguments (``arch`` as a name of :attr:`RegNet.arch_settings` or a dict of
``w0, wa, wm, group_w, depth, bot_mul``), defaults and ``state_dict`` keys (``conv1``, ``bn1``,
``layer{i}.{j}.conv1/bn1/conv2/bn2/conv3/bn3``, ``layer{i}.0.downsample.{0,1}``), so MMDetection's
``open-mmlab://regnetx_*`` ImageNet checkpoints and RegNet detectors load unchanged. The network is
torchvision's ``regnet_x_*`` with other key names (tests compare the two).
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule, Sequential

from rcnn_plugins.registry import MODELS
from ..layers.frozen_bn import FrozenBatchNorm2d
from ..pretrained import check_init_cfg_cached
from .resnet import ResidualBlock
from .train_mode import batchnorms_to_eval, freeze


class RegNetBottleneck(ResidualBlock):
    """ResNeXt-style block with expansion 1: 1x1 (``width``), grouped 3x3 (``groups``, the stride),
    1x1 (``planes``), plus the shortcut; ``forward: (B, inplanes, H, W) -> (B, planes, H/s, W/s)``."""

    def __init__(self, inplanes: int, planes: int, width: int, groups: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, with_cp: bool = False, conv_cfg=None,
                 norm_cfg=dict(type='BN'), init_cfg=None):
        super().__init__(init_cfg)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, width, postfix=2)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, planes, postfix=3)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, width, 1, bias=False)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, width, width, 3, stride=stride, padding=dilation, dilation=dilation,
                                      groups=groups, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.conv3 = build_conv_layer(conv_cfg, width, planes, 1, bias=False)
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.with_cp = with_cp

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        return out + (x if self.downsample is None else self.downsample(x))


def regnet_widths(w0: int, wa: float, wm: float, depth: int, divisor: int = 8) -> List[int]:
    """Per-block widths of the RegNet paper's quantised linear rule (its eq. 2-4).

    ``u_j = w0 + wa * j`` for block ``j``; ``s_j = round(log(u_j / w0) / log(wm))``; the width is
    ``w0 * wm ** s_j`` rounded to a multiple of ``divisor``. Blocks of equal width form a stage.
    """
    if not (wa >= 0 and w0 > 0 and wm > 1 and w0 % divisor == 0):
        raise ValueError(f'RegNet arch: need wa >= 0, w0 > 0 divisible by {divisor}, wm > 1; '
                         f'got w0={w0}, wa={wa}, wm={wm}')
    u = np.arange(depth) * wa + w0
    s = np.round(np.log(u / w0) / np.log(wm))
    return (np.round(w0 * np.power(wm, s) / divisor) * divisor).astype(int).tolist()


def regnet_stages(arch: dict) -> Tuple[List[int], List[int], List[int]]:
    """``(stage widths, blocks per stage, groups per stage)`` of an ``arch`` dict, with each stage's
    bottleneck width made a multiple of its group width (``group_w`` capped at the bottleneck width)."""
    widths = regnet_widths(arch['w0'], arch['wa'], arch['wm'], arch['depth'])
    starts = [j for j in range(len(widths)) if j == 0 or widths[j] != widths[j - 1]]
    stage_widths = [widths[j] for j in starts]
    stage_blocks = np.diff(starts + [len(widths)]).tolist()
    b = arch['bot_mul']
    bot = [int(w * b) for w in stage_widths]
    group_w = [min(arch['group_w'], w) for w in bot]
    bot = [int(round(w / g) * g) for w, g in zip(bot, group_w)]
    stage_widths = [int(w / b) for w in bot]
    groups = [int(round(w * b)) // g for w, g in zip(stage_widths, group_w)]
    return stage_widths, stage_blocks, groups


@MODELS.register_module()
class RegNet(BaseModule):
    """RegNetX: a 3x3 stride-2 stem (no max pooling) and up to four stages of
    :class:`RegNetBottleneck` blocks whose widths and group counts come from ``arch``.

    Args:
        arch: a key of :attr:`arch_settings` (``'regnetx_3.2gf'``, ...) or a dict with ``w0, wa, wm,
            group_w, depth, bot_mul``.
        in_channels: image channels. stem_channels: stem width (32). base_channels: unused (MMDetection's).
        strides, dilations: per stage (stride on the 3x3 conv of each stage's first block).
        out_indices: stages whose outputs are returned (0-based).
        style: ``'pytorch'`` only (the stride is on the 3x3 conv, as in the RegNet paper).
        frozen_stages: stem plus stages 1..k frozen (no grad, eval mode); -1: none.
        norm_cfg, norm_eval, conv_cfg, with_cp, zero_init_residual, init_cfg: as :class:`ResNet`.
        deep_stem, avg_down, dcn, stage_with_dcn, plugins, pretrained: only their defaults are
            supported (no zoo config sets them); anything else is refused.

    ``forward(x (B, in_channels, H, W))`` returns, per index in ``out_indices``, stage ``i``'s map
    ``(B, stage_widths[i], H / 2**(i+2), W / 2**(i+2))`` (``ceil`` division, default strides).
    """

    arch_settings = {
        'regnetx_400mf': dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=22, bot_mul=1.0),
        'regnetx_800mf': dict(w0=56, wa=35.73, wm=2.28, group_w=16, depth=16, bot_mul=1.0),
        'regnetx_1.6gf': dict(w0=80, wa=34.01, wm=2.25, group_w=24, depth=18, bot_mul=1.0),
        'regnetx_3.2gf': dict(w0=88, wa=26.31, wm=2.25, group_w=48, depth=25, bot_mul=1.0),
        'regnetx_4.0gf': dict(w0=96, wa=38.65, wm=2.43, group_w=40, depth=23, bot_mul=1.0),
        'regnetx_6.4gf': dict(w0=184, wa=60.83, wm=2.07, group_w=56, depth=17, bot_mul=1.0),
        'regnetx_8.0gf': dict(w0=80, wa=49.56, wm=2.88, group_w=120, depth=23, bot_mul=1.0),
        'regnetx_12gf': dict(w0=168, wa=73.36, wm=2.37, group_w=112, depth=19, bot_mul=1.0),
    }

    def __init__(self,
                 arch,
                 in_channels: int = 3,
                 stem_channels: int = 32,
                 base_channels: int = 32,
                 strides: Sequence[int] = (2, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 style: str = 'pytorch',
                 deep_stem: bool = False,
                 avg_down: bool = False,
                 frozen_stages: int = -1,
                 conv_cfg=None,
                 norm_cfg=dict(type='BN', requires_grad=True),
                 norm_eval: bool = True,
                 dcn=None,
                 stage_with_dcn=(False, False, False, False),
                 plugins=None,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise KeyError(f'RegNet: arch={arch!r} is not one of {sorted(self.arch_settings)}; '
                               'or give a dict(w0=, wa=, wm=, group_w=, depth=, bot_mul=)')
            arch = self.arch_settings[arch]
        elif not isinstance(arch, dict):
            raise ValueError(f'RegNet: arch must be a name or a dict, got {type(arch).__name__}')
        unsupported = dict(style=(style, 'pytorch'), deep_stem=(deep_stem, False), avg_down=(avg_down, False),
                           dcn=(dcn, None), plugins=(plugins, None))
        for name, (value, default) in unsupported.items():
            if value != default:
                raise NotImplementedError(f'RegNet: {name}={value!r} is not supported (only {default!r}); '
                                          'no MMDetection RegNet config sets it')
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('RegNet: give init_cfg or pretrained, not both')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        stage_widths, stage_blocks, groups = regnet_stages(arch)
        num_stages = len(stage_widths)
        if not 1 <= num_stages <= 4 or len(strides) != num_stages or len(dilations) != num_stages:
            raise ValueError(f'RegNet: arch gives {num_stages} stages; strides ({len(strides)}) and dilations '
                             f'({len(dilations)}) need one entry per stage (1 to 4 stages)')
        if not out_indices or max(out_indices) >= num_stages:
            raise ValueError(f'RegNet: out_indices must be in 0..{num_stages - 1}, got {tuple(out_indices)}')
        self.arch = arch
        self.stage_widths, self.stage_blocks, self.group_widths = stage_widths, stage_blocks, \
            [w // g for w, g in zip(stage_widths, groups)]
        self.stage_groups = groups
        self.depth = sum(stage_blocks)
        self.num_stages = num_stages
        self.stem_channels, self.base_channels = stem_channels, base_channels
        self.strides, self.dilations = tuple(strides), tuple(dilations)
        self.out_indices = tuple(out_indices)
        self.style = style
        self.frozen_stages = frozen_stages
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.feat_dim = stage_widths[-1]
        block_init_cfg = None
        if init_cfg is None:
            self.init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                             dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
            if zero_init_residual:  # each block starts as the identity
                block_init_cfg = dict(type='Constant', val=0, override=dict(name='norm3'))

        self.conv1 = build_conv_layer(conv_cfg, in_channels, stem_channels, 3, stride=2, padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.res_layers = []
        inplanes = stem_channels
        for i, (planes, blocks) in enumerate(zip(stage_widths, stage_blocks)):
            layer = []
            for j in range(blocks):
                stride = self.strides[i] if j == 0 else 1
                downsample = None
                if j == 0 and (stride != 1 or inplanes != planes):
                    downsample = nn.Sequential(
                        build_conv_layer(conv_cfg, inplanes, planes, 1, stride=stride, bias=False),
                        build_norm_layer(norm_cfg, planes)[1])
                layer.append(RegNetBottleneck(inplanes, planes, planes, groups[i], stride=stride,
                                              dilation=self.dilations[i], downsample=downsample, with_cp=with_cp,
                                              conv_cfg=conv_cfg, norm_cfg=norm_cfg, init_cfg=block_init_cfg))
                inplanes = planes
            self.add_module(f'layer{i + 1}', Sequential(*layer))
            self.res_layers.append(f'layer{i + 1}')
        if norm_eval and norm_cfg.get('type') in ('BN', 'BN2d') and not norm_cfg.get('requires_grad', True):
            FrozenBatchNorm2d.convert(self)  # a constant affine: nothing saved for backward
        self._freeze_stages()

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def out_channels(self) -> List[int]:
        """Channels of each returned map (what the neck's ``in_channels`` must be)."""
        return [self.stage_widths[i] for i in self.out_indices]

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        freeze([self.conv1, self.norm1] + [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)])

    def train(self, mode: bool = True) -> 'RegNet':
        """Train/eval mode, keeping frozen stages and (with ``norm_eval``) every BatchNorm in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            batchnorms_to_eval(self)
        return self

    def init_weights(self) -> None:
        """Initialise from ``init_cfg``; a named pretrained checkpoint must already be cached."""
        check_init_cfg_cached(self.init_cfg)
        super().init_weights()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.relu(self.norm1(self.conv1(x)))
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
