"""The residual blocks of ResNet (``BasicBlock``, ``Bottleneck``) and ``ResLayer`` (one stage).

MMDetection's arguments and sub-module names, so ``state_dict`` keys are MMDetection's (and
torchvision's): ``conv1``, ``bn1`` (``gn1`` with GN), ``conv2``, ..., ``downsample.0/1``; plugins
are named by ``mmcv.cnn.build_plugin_layer`` (``gen_attention_block``, ...). The ResNet family
(ResNeXt, Res2Net, ResNeSt) subclasses ``Bottleneck`` and changes its 3x3 stage only.
"""
import copy
from typing import List, Optional

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer, build_plugin_layer
from mmengine.model import BaseModule, Sequential

PLUGIN_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')


class ResidualBlock(BaseModule):
    """Base of the ResNet blocks: ``relu(residual branch + shortcut)``.

    Subclasses build their layers and define ``_residual`` (branch plus shortcut, before the final
    ReLU); with ``with_cp`` the block is recomputed in backward instead of storing its activations
    (same values and gradients, less memory, about one more forward of time).
    """

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        return getattr(self, self.norm2_name)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        return self.relu(out)


class BasicBlock(ResidualBlock):
    """Two 3x3 convs with an identity (or ``downsample``) shortcut; ``expansion`` = 1.

    ``style`` is accepted for a uniform block signature; with two 3x3 convs it changes nothing.
    ``dcn`` and ``plugins`` are not supported (as in MMDetection).

    ``forward(x (B, inplanes, H, W)) -> (B, planes, H / stride, W / stride)``.
    """
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, style: str = 'pytorch', with_cp: bool = False,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type='BN'), dcn: Optional[dict] = None,
                 plugins: Optional[list] = None, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        if dcn is not None or plugins:
            raise ValueError('BasicBlock (ResNet-18/34) supports neither dcn nor plugins (as MMDetection); '
                             'use depth >= 50 or remove them')
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, planes, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(norm_cfg, planes, postfix=2)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, planes, 3, stride=stride, padding=dilation,
                                      dilation=dilation, bias=False)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(conv_cfg, planes, planes, 3, padding=1, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.with_cp = with_cp

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class Bottleneck(ResidualBlock):
    """1x1 reduce, 3x3, 1x1 expand (``expansion`` = 4) with a shortcut.

    Args:
        style: ``'pytorch'`` puts the stride on the 3x3 conv, ``'caffe'`` on the first 1x1 conv.
        dcn: conv config of the 3x3 conv (``dict(type='DCN' | 'DCNv2', deform_groups=...)``);
            ``fallback_on_stride=True`` keeps a plain conv where the 3x3 conv is strided.
        plugins: ``[dict(cfg=dict(type=...), position='after_conv1'|'after_conv2'|'after_conv3')]``,
            built by ``mmcv.cnn.build_plugin_layer`` and applied in order at that position.

    ``forward(x (B, inplanes, H, W)) -> (B, 4 * planes, H / stride, W / stride)``.
    """
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, style: str = 'pytorch', with_cp: bool = False,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type='BN'), dcn: Optional[dict] = None,
                 plugins: Optional[list] = None, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        if style not in ('pytorch', 'caffe'):
            raise ValueError(f"Bottleneck: style must be 'pytorch' or 'caffe', got {style!r}")
        if dcn is not None and not isinstance(dcn, dict):
            raise TypeError(f'Bottleneck: dcn must be a conv config dict or None, got {type(dcn).__name__}')
        plugins = list(plugins or [])
        for p in plugins:
            if p.get('position') not in PLUGIN_POSITIONS:
                raise ValueError(f'Bottleneck: plugin position must be one of {PLUGIN_POSITIONS}, '
                                 f'got {p.get("position")!r} in {p}')
        self.inplanes, self.planes, self.stride, self.dilation = inplanes, planes, stride, dilation
        self.style, self.with_cp, self.conv_cfg, self.norm_cfg = style, with_cp, conv_cfg, norm_cfg
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        self.dcn = copy.deepcopy(dcn)
        self.with_dcn = dcn is not None
        self.with_plugins = bool(plugins)
        width = self._width()
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width, postfix=1)
        self.norm3_name, norm3 = build_norm_layer(norm_cfg, planes * self.expansion, postfix=3)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, width, 1, stride=self.conv1_stride, bias=False)
        self.add_module(self.norm1_name, norm1)
        self._make_conv2(width)
        self.conv3 = build_conv_layer(conv_cfg, width, planes * self.expansion, 1, bias=False)
        self.add_module(self.norm3_name, norm3)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.after_conv1_plugin_names = self._make_plugins(width, plugins, 'after_conv1')
        self.after_conv2_plugin_names = self._make_plugins(width, plugins, 'after_conv2')
        self.after_conv3_plugin_names = self._make_plugins(planes * self.expansion, plugins, 'after_conv3')

    def _width(self) -> int:
        """Channels of the 3x3 stage (ResNeXt widens it)."""
        return self.planes

    def _conv2_cfg(self) -> Optional[dict]:
        """The 3x3 conv's config: ``dcn`` (without ``fallback_on_stride``) unless it falls back."""
        if not self.with_dcn:
            return self.conv_cfg
        dcn = dict(self.dcn)
        fallback_on_stride = dcn.pop('fallback_on_stride', False)
        if fallback_on_stride and self.conv2_stride > 1:
            return self.conv_cfg
        if self.conv_cfg is not None:
            raise ValueError(f'Bottleneck: conv_cfg {self.conv_cfg} and dcn {self.dcn} cannot be combined '
                             '(as MMDetection); set one of them to None')
        return dcn

    def _make_conv2(self, width: int, groups: int = 1) -> None:
        self.norm2_name, norm2 = build_norm_layer(self.norm_cfg, width, postfix=2)
        self.conv2 = build_conv_layer(self._conv2_cfg(), width, width, 3, stride=self.conv2_stride,
                                      padding=self.dilation, dilation=self.dilation, groups=groups, bias=False)
        self.add_module(self.norm2_name, norm2)

    def _make_plugins(self, in_channels: int, plugins: List[dict], position: str) -> List[str]:
        names = []
        for plugin in plugins:
            if plugin['position'] != position:
                continue
            cfg = dict(plugin['cfg'])
            name, layer = build_plugin_layer(cfg, in_channels=in_channels, postfix=cfg.pop('postfix', ''))
            if hasattr(self, name):
                raise ValueError(f'Bottleneck: duplicate plugin name {name!r}; give each a different postfix')
            self.add_module(name, layer)
            names.append(name)
        return names

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _plugins(self, x: torch.Tensor, names: List[str]) -> torch.Tensor:
        for name in names:
            x = getattr(self, name)(x)
        return x

    def _conv2_forward(self, out: torch.Tensor) -> torch.Tensor:
        return self.relu(self.norm2(self.conv2(out)))

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self._plugins(out, self.after_conv1_plugin_names)
        out = self._conv2_forward(out)
        out = self._plugins(out, self.after_conv2_plugin_names)
        out = self.norm3(self.conv3(out))
        out = self._plugins(out, self.after_conv3_plugin_names)
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class ResLayer(Sequential):
    """One ResNet stage: ``num_blocks`` blocks, the first with ``stride`` and the shortcut projection.

    The projection (when the stride or the width changes) is ``downsample = [AvgPool2d (avg_down),]
    conv 1x1 (stride, or 1 after the pool), norm`` (MMDetection's keys ``downsample.0/1[/2]``).
    Extra keyword arguments go to every block, ``first_block_kwargs`` to the first one only
    (Res2Net's ``stage_type='stage'``). mmengine's ``Sequential`` so ``init_weights`` reaches the
    blocks' ``init_cfg``.
    """

    def __init__(self, block, inplanes: int, planes: int, num_blocks: int, stride: int = 1,
                 avg_down: bool = False, conv_cfg: Optional[dict] = None, norm_cfg: dict = dict(type='BN'),
                 first_block_kwargs: Optional[dict] = None, **kwargs):
        downsample = None
        out_channels = planes * block.expansion
        if stride != 1 or inplanes != out_channels:
            layers = []
            conv_stride = stride
            if avg_down:  # also at stride 1 (a 1x1 pool), so the keys are downsample.1/2 as MMDetection's
                conv_stride = 1
                layers.append(nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True,
                                           count_include_pad=False))
            layers += [build_conv_layer(conv_cfg, inplanes, out_channels, 1, stride=conv_stride, bias=False),
                       build_norm_layer(norm_cfg, out_channels)[1]]
            downsample = nn.Sequential(*layers)
        blocks = [block(inplanes=inplanes, planes=planes, stride=stride, downsample=downsample,
                        conv_cfg=conv_cfg, norm_cfg=norm_cfg, **kwargs, **(first_block_kwargs or {}))]
        blocks += [block(inplanes=out_channels, planes=planes, stride=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                         **kwargs) for _ in range(1, num_blocks)]
        super().__init__(*blocks)
