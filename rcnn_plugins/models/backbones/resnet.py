"""ResNet backbone (He et al., 2016), registered as ``'ResNet'``.

Arguments, defaults and ``state_dict`` keys are MMDetection 3.x's, which equal torchvision's ResNet
keys without ``fc.*`` (``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``,
``layer1.0.downsample.0.weight``, ...), so torchvision / MMDetection ImageNet checkpoints load as-is.
Norm layers come from ``mmcv.cnn.build_norm_layer`` (``BN``, ``SyncBN``, ``GN``, ``requires_grad``)
and are named by it (``bn1`` for BN, ``gn1`` for GN), as in MMDetection; convs from
``mmcv.cnn.build_conv_layer`` (``ConvWS`` for weight standardisation, ``DCN`` / ``DCNv2`` through
``dcn``). The blocks live in ``resnet_blocks.py``; ResNeXt, Res2Net and ResNeSt subclass this class
and replace ``block_for_depth`` / ``make_res_layer``.
"""
import copy
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule

from rcnn_plugins.registry import MODELS
from ..layers.frozen_bn import FrozenBatchNorm2d
from ..pretrained import check_init_cfg_cached
from .resnet_blocks import BasicBlock, Bottleneck, ResidualBlock, ResLayer  # noqa: F401  (re-exported)
from .train_mode import batchnorms_to_eval, freeze


@MODELS.register_module()
class ResNet(BaseModule):
    """ResNet-18/34/50/101/152 returning the feature maps of the stages in ``out_indices``.

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: channels of the input image.
        stem_channels: output channels of the stem (``None``: ``base_channels``).
        base_channels: width of the first stage (``planes``); stage ``i`` has ``base_channels * 2**i``.
        num_stages: 1..4 stages built.
        strides, dilations: per stage, for its first block (stride) / all its blocks (dilation).
        out_indices: stages whose outputs ``forward`` returns (in stage order).
        style: ``'pytorch'`` (stride on the 3x3 conv) or ``'caffe'`` (stride on the first 1x1).
        deep_stem: three 3x3 convs (``stem.*``) instead of one 7x7 conv (ResNetV1c/d).
        avg_down: shortcut downsampling by AvgPool + 1x1 conv instead of a strided 1x1 conv (ResNetV1d).
        frozen_stages: stem and stages ``1..frozen_stages`` are kept in eval mode with
            ``requires_grad=False`` (-1: nothing frozen, 0: stem only).
        conv_cfg, norm_cfg: given to ``mmcv.cnn.build_conv_layer`` / ``build_norm_layer``.
        norm_eval: keep every BatchNorm in eval mode (running statistics frozen) under ``train()``.
        dcn: conv config of the 3x3 convs of the stages in ``stage_with_dcn``
            (``dict(type='DCN' | 'DCNv2', deform_groups=1, fallback_on_stride=False)``).
        stage_with_dcn: one bool per stage.
        plugins: ``[dict(cfg=dict(type='GeneralizedAttention', ...), stages=(False, False, True, True),
            position='after_conv2')]``: mmcv plugin layers inserted into the Bottlenecks of the stages.
        with_cp: gradient checkpointing of every block while training (saves memory, costs time).
        zero_init_residual: the last norm of each block starts at 0, so each block starts as identity.
        pretrained: deprecated, same as ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)``.
        init_cfg: mmengine init config; ``None`` gives Kaiming convs and unit norms.

    ``forward(x (B, in_channels, H, W))`` returns a tuple with, for each ``i`` in ``out_indices``, a
    ``(B, base_channels * 2**i * expansion, H / 2**(i + 2), W / 2**(i + 2))`` tensor (default strides).
    """
    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 stem_channels: Optional[int] = None,
                 base_channels: int = 64,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 style: str = 'pytorch',
                 deep_stem: bool = False,
                 avg_down: bool = False,
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = True,
                 dcn: Optional[dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 plugins: Optional[List[dict]] = None,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg=None):
        super().__init__(init_cfg)
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth!r} for ResNet; allowed depths: {sorted(self.arch_settings)}')
        if not 1 <= num_stages <= 4:
            raise ValueError(f'num_stages must be in 1..4, got {num_stages}')
        if len(strides) < num_stages or len(dilations) < num_stages:
            raise ValueError(f'strides {tuple(strides)} and dilations {tuple(dilations)} need one value per '
                             f'stage ({num_stages} stages)')
        if not out_indices or any(not 0 <= i < num_stages for i in out_indices):
            raise ValueError(f'out_indices {tuple(out_indices)} must be non-empty stage indices in '
                             f'0..{num_stages - 1}')
        if style not in ('pytorch', 'caffe'):
            raise ValueError(f"style must be 'pytorch' or 'caffe', got {style!r}")
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'frozen_stages must be in -1..{num_stages}, got {frozen_stages}')
        if dcn is not None and len(stage_with_dcn) != num_stages:
            raise ValueError(f'stage_with_dcn {tuple(stage_with_dcn)} needs one bool per stage ({num_stages})')
        for plugin in plugins or []:
            stages = plugin.get('stages')
            if stages is not None and len(stages) != num_stages:
                raise ValueError(f'plugin {plugin}: stages needs one bool per stage ({num_stages})')
        if init_cfg is not None and pretrained is not None:
            raise ValueError('give either init_cfg or the deprecated pretrained, not both')

        block, stage_blocks = self.block_for_depth(depth)
        block_init_cfg = None
        if pretrained is not None:
            if not isinstance(pretrained, str):
                raise TypeError(f'pretrained must be a checkpoint path/name (str) or None, got {type(pretrained)}')
            warnings.warn('ResNet(pretrained=...) is deprecated; use init_cfg=dict(type="Pretrained", '
                          'checkpoint=...)', DeprecationWarning)
            self.init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        elif init_cfg is None:
            self.init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                             dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
            if zero_init_residual:
                # Children are initialised after the parent, so this overrides the unit norm above.
                last_norm = 'norm2' if issubclass(block, BasicBlock) else 'norm3'
                block_init_cfg = dict(type='Constant', val=0, override=dict(name=last_norm))

        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.deep_stem = deep_stem
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        stem_channels = base_channels if stem_channels is None else stem_channels
        self.stem_channels, self.base_channels, self.num_stages = stem_channels, base_channels, num_stages
        self.block = block

        self._make_stem(in_channels, stem_channels, conv_cfg, norm_cfg)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        self.res_layers = []
        inplanes = stem_channels
        for i in range(num_stages):
            planes = base_channels * 2**i
            layer = self.make_res_layer(
                block=block, inplanes=inplanes, planes=planes, num_blocks=stage_blocks[i], stride=strides[i],
                dilation=dilations[i], style=style, avg_down=avg_down, with_cp=with_cp, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg, dcn=dcn if dcn is not None and stage_with_dcn[i] else None,
                plugins=self.make_stage_plugins(plugins, i) if plugins else None, init_cfg=block_init_cfg,
                **self.stage_kwargs(i))
            inplanes = planes * block.expansion
            self.add_module(f'layer{i + 1}', layer)
            self.res_layers.append(f'layer{i + 1}')
        self.feat_dim = inplanes
        if norm_eval and norm_cfg.get('type') in ('BN', 'BN2d') and not norm_cfg.get('requires_grad', True):
            # Eval-mode BN with frozen weights is a constant affine: computing it as one keeps
            # autograd from saving every BN input for backward (see FrozenBatchNorm2d).
            FrozenBatchNorm2d.convert(self)
        self._freeze_stages()

    def _make_stem(self, in_channels: int, stem_channels: int, conv_cfg, norm_cfg) -> None:
        if self.deep_stem:
            mid = stem_channels // 2
            layers = []
            for c_in, c_out, stride in ((in_channels, mid, 2), (mid, mid, 1), (mid, stem_channels, 1)):
                layers += [build_conv_layer(conv_cfg, c_in, c_out, 3, stride=stride, padding=1, bias=False),
                           build_norm_layer(norm_cfg, c_out)[1], nn.ReLU(inplace=True)]
            self.stem = nn.Sequential(*layers)
        else:
            self.conv1 = build_conv_layer(conv_cfg, in_channels, stem_channels, 7, stride=2, padding=3, bias=False)
            self.norm1_name, norm1 = build_norm_layer(norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = nn.ReLU(inplace=True)

    def block_for_depth(self, depth: int):
        """``(block class, blocks per stage)`` for ``depth`` (subclasses swap the block)."""
        return self.arch_settings[depth]

    def stage_kwargs(self, stage_idx: int) -> dict:
        """Extra ``make_res_layer`` arguments for stage ``stage_idx`` (DetectoRS: ``sac``, RFP input)."""
        return {}

    def make_res_layer(self, **kwargs) -> ResLayer:
        """One stage (``ResLayer``); subclasses add their block arguments (groups, scales, radix)."""
        return ResLayer(**kwargs)

    @staticmethod
    def make_stage_plugins(plugins: List[dict], stage_idx: int) -> List[dict]:
        """The plugins (``cfg`` + ``position``) whose ``stages`` include ``stage_idx`` (all if absent)."""
        stage_plugins = []
        for plugin in plugins:
            plugin = copy.deepcopy(plugin)
            stages = plugin.pop('stages', None)
            if stages is None or stages[stage_idx]:
                stage_plugins.append(plugin)
        return stage_plugins

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        stem = [self.stem] if self.deep_stem else [self.conv1, self.norm1]
        frozen = stem + [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]
        freeze(frozen)

    def train(self, mode: bool = True) -> 'ResNet':
        """Set train/eval mode, keeping frozen stages and (with ``norm_eval``) all BatchNorms in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            batchnorms_to_eval(self)
        return self

    def init_weights(self) -> None:
        """Initialise from ``init_cfg``; a ``torchvision://`` checkpoint must already be in the hub cache."""
        check_init_cfg_cached(self.init_cfg)
        super().init_weights()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        x = self.maxpool(x)
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
