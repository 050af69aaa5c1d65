"""HRNet backbone (Wang et al., "Deep High-Resolution Representation Learning", 2019), registered
as ``'HRNet'``.

MMDetection 3.x's arguments (the ``extra`` dict of four stages), defaults and ``state_dict`` keys
(``conv1``, ``bn1``, ``conv2``, ``bn2``, ``layer1``, ``transition{1,2,3}``, ``stage{2,3,4}`` of
:class:`~rcnn_plugins.models.backbones.hrnet_module.HRModule`), so ``open-mmlab://msra/hrnetv2_w*``
checkpoints and MMDetection's HRNet detectors load unchanged.
"""
from typing import List, Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule, Sequential

from rcnn_plugins.registry import MODELS
from ..pretrained import check_init_cfg_cached
from .hrnet_module import HRModule
from .resnet import BasicBlock, Bottleneck
from .train_mode import batchnorms_to_eval


@MODELS.register_module()
class HRNet(BaseModule):
    """Stem (two stride-2 3x3 convs, 64 channels), ``layer1`` (stage 1: one branch of blocks), then
    stages 2-4 of :class:`HRModule`, each adding one branch at half the resolution through a
    ``transition`` layer.

    Args:
        extra: ``dict(stage1=..., stage2=..., stage3=..., stage4=...)``, each with ``num_modules``,
            ``num_branches``, ``block`` (``'BASIC'`` or ``'BOTTLENECK'``), ``num_blocks`` and
            ``num_channels`` (one per branch). HRNetV2p-W18: stage ``k`` channels ``18 * 2**b``.
        in_channels: image channels.
        conv_cfg, norm_cfg: for every conv and norm layer.
        norm_eval: keep every BatchNorm in eval mode while training.
        with_cp: activation checkpointing in the residual blocks.
        zero_init_residual: accepted for config compatibility; like MMDetection 3.3's HRNet, it does
            not change the initialisation.
        multiscale_output: the last module fuses into every branch (True) or only the first.
        pretrained: deprecated alias of ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
        init_cfg: mmengine init config (default: Kaiming convs, unit norm weights).

    ``forward(x (B, in_channels, H, W))`` returns a list of stage 4's branches,
    ``(B, C_b, H / 2**(b+2), W / 2**(b+2))`` for b = 0..3; ``H`` and ``W`` must be multiples of 32
    (the data preprocessor's ``pad_size_divisor=32``) so the branches' sizes halve exactly.
    """

    blocks_dict = {'BASIC': BasicBlock, 'BOTTLENECK': Bottleneck}

    def __init__(self,
                 extra: dict,
                 in_channels: int = 3,
                 conv_cfg=None,
                 norm_cfg=dict(type='BN'),
                 norm_eval: bool = True,
                 with_cp: bool = False,
                 zero_init_residual: bool = False,
                 multiscale_output: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('HRNet: give init_cfg or pretrained, not both')
            self.init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        elif init_cfg is None:
            self.init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                             dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        self.pretrained = pretrained
        missing = [f'stage{i}' for i in range(1, 5) if f'stage{i}' not in extra]
        if missing:
            raise KeyError(f'HRNet: extra needs stage1..stage4, missing {missing}')
        for i in range(1, 5):
            cfg = extra[f'stage{i}']
            if cfg['block'] not in self.blocks_dict:
                raise KeyError(f"HRNet: extra.stage{i}.block must be 'BASIC' or 'BOTTLENECK', got {cfg['block']!r}")
            if not len(cfg['num_blocks']) == len(cfg['num_channels']) == cfg['num_branches']:
                raise ValueError(f'HRNet: extra.stage{i} has num_branches={cfg["num_branches"]} but '
                                 f'num_blocks={tuple(cfg["num_blocks"])}, num_channels={tuple(cfg["num_channels"])}')
        self.extra = extra
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual

        self.norm1_name, norm1 = build_norm_layer(norm_cfg, 64, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, 64, postfix=2)
        self.conv1 = build_conv_layer(conv_cfg, in_channels, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, 64, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)

        self.stage1_cfg = extra['stage1']
        block = self.blocks_dict[self.stage1_cfg['block']]
        channels = self.stage1_cfg['num_channels'][0]
        self.layer1 = self._make_layer(block, 64, channels, self.stage1_cfg['num_blocks'][0])
        pre = [channels * block.expansion]
        for s in (2, 3, 4):
            cfg = extra[f'stage{s}']
            setattr(self, f'stage{s}_cfg', cfg)
            block = self.blocks_dict[cfg['block']]
            channels = [c * block.expansion for c in cfg['num_channels']]
            setattr(self, f'transition{s - 1}', self._make_transition_layer(pre, channels))
            stage, pre = self._make_stage(cfg, channels, multiscale_output=multiscale_output if s == 4 else True)
            setattr(self, f'stage{s}', stage)
        self.out_channels = list(pre)  # channels of the returned branches (the neck's in_channels)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    def _conv_norm_relu(self, c_in: int, c_out: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            build_conv_layer(self.conv_cfg, c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
            build_norm_layer(self.norm_cfg, c_out)[1], nn.ReLU(inplace=True))

    def _make_transition_layer(self, pre: List[int], cur: List[int]) -> nn.ModuleList:
        """Existing branches: a 3x3 conv where the channels change, else None; a new branch ``i``:
        stride-2 3x3 convs from the last existing branch (the last one changes the channels)."""
        layers = []
        for i, c in enumerate(cur):
            if i < len(pre):
                layers.append(self._conv_norm_relu(pre[i], c, 1) if c != pre[i] else None)
            else:
                steps = i + 1 - len(pre)
                layers.append(nn.Sequential(*[
                    self._conv_norm_relu(pre[-1], c if j == steps - 1 else pre[-1], 2) for j in range(steps)]))
        return nn.ModuleList(layers)

    def _make_layer(self, block, inplanes: int, planes: int, num_blocks: int) -> Sequential:
        downsample = None
        if inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                build_conv_layer(self.conv_cfg, inplanes, planes * block.expansion, kernel_size=1, bias=False),
                build_norm_layer(self.norm_cfg, planes * block.expansion)[1])
        common = dict(with_cp=self.with_cp, norm_cfg=self.norm_cfg, conv_cfg=self.conv_cfg)
        layers = [block(inplanes, planes, stride=1, downsample=downsample, **common)]
        layers += [block(planes * block.expansion, planes, **common) for _ in range(1, num_blocks)]
        return Sequential(*layers)

    def _make_stage(self, cfg: dict, in_channels: List[int], multiscale_output: bool = True):
        block = self.blocks_dict[cfg['block']]
        modules = [HRModule(cfg['num_branches'], block, cfg['num_blocks'], in_channels, cfg['num_channels'],
                            multiscale_output or i < cfg['num_modules'] - 1, with_cp=self.with_cp,
                            norm_cfg=self.norm_cfg, conv_cfg=self.conv_cfg)
                   for i in range(cfg['num_modules'])]
        return Sequential(*modules), in_channels

    def train(self, mode: bool = True) -> 'HRNet':
        """Train/eval mode, keeping every BatchNorm in eval with ``norm_eval``."""
        super().train(mode)
        if mode and self.norm_eval:
            batchnorms_to_eval(self)
        return self

    def init_weights(self) -> None:
        """Initialise from ``init_cfg``; a named pretrained checkpoint must already be cached."""
        check_init_cfg_cached(self.init_cfg)
        super().init_weights()

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.relu(self.norm2(self.conv2(x)))
        ys = [self.layer1(x)]
        for s in (2, 3, 4):
            transition = getattr(self, f'transition{s - 1}')
            # A transition (a new branch, or stage 1's channel change) starts from the previous
            # stage's lowest-resolution output, as in MMDetection.
            xs = [ys[i] if t is None else t(ys[-1]) for i, t in enumerate(transition)]
            ys = getattr(self, f'stage{s}')(xs)
        return ys
