"""``ResLayer``: one ResNet stage run on pooled RoI features, the shared head of the C4 detectors
(Faster R-CNN "R50-C4": stages 1-3 are the backbone, stage 4 runs per RoI on 14x14 RoIAlign crops
of stage 3 and halves them to 7x7). MMDetection's name, arguments and keys (``layer{stage+1}.*``,
equal to a ResNet checkpoint's, so ImageNet weights of stage 4 load into it)."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from ....registry import MODELS
from ...backbones.resnet import ResNet
from ...backbones.resnet_blocks import ResLayer as ResNetStage
from ...layers.frozen_bn import FrozenBatchNorm2d


@MODELS.register_module()
class ResLayer(BaseModule):
    """Stage ``stage`` (0-based) of a ResNet of ``depth``.

    Args:
        depth: 50, 101, ... (ResNet's arch settings: block type and blocks per stage).
        stage: which stage (3: the last, 1024 -> 2048 channels for Bottleneck ResNets).
        stride, dilation: of the stage's first block / all its blocks.
        style: ``'pytorch'`` (stride on the 3x3 conv) or ``'caffe'`` (on the first 1x1 conv).
        norm_cfg: norm layers; ``requires_grad=False`` with ``norm_eval`` makes them frozen (constant
            affine, as the backbone does).
        norm_eval: BatchNorms stay in eval mode under ``train()``.
        with_cp: gradient checkpointing of the blocks.
        dcn: must be None (deformable convs need compiled ops).
        pretrained: deprecated, as ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)``.

    ``forward(x (R, inplanes, h, w)) -> (R, planes * expansion, h / stride, w / stride)``.
    """

    def __init__(self, depth: int, stage: int = 3, stride: int = 2, dilation: int = 1, style: str = 'pytorch',
                 norm_cfg: dict = dict(type='BN', requires_grad=True), norm_eval: bool = True,
                 with_cp: bool = False, dcn: Optional[dict] = None, pretrained: Optional[str] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if depth not in ResNet.arch_settings:
            raise KeyError(f'ResLayer: invalid depth {depth!r}; allowed: {sorted(ResNet.arch_settings)}')
        if not 0 <= stage <= 3:
            raise ValueError(f'ResLayer: stage must be in 0..3, got {stage}')
        if dcn is not None:
            raise NotImplementedError('ResLayer: dcn (deformable conv) needs compiled mmcv.ops; set dcn=None')
        if init_cfg is not None and pretrained is not None:
            raise ValueError('ResLayer: give either init_cfg or the deprecated pretrained, not both')
        if pretrained is not None:
            self.init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        elif init_cfg is None:
            self.init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                             dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        self.stage = stage
        self.norm_eval = norm_eval
        block, stage_blocks = ResNet.arch_settings[depth]
        planes = 64 * 2 ** stage
        inplanes = 64 * 2 ** (stage - 1) * block.expansion if stage > 0 else 64
        # The backbone's own stage builder, so the keys are ResNet's layer{stage + 1}.* ones.
        layer = ResNetStage(block=block, inplanes=inplanes, planes=planes, num_blocks=stage_blocks[stage],
                            stride=stride, dilation=dilation, style=style, avg_down=False, with_cp=with_cp,
                            conv_cfg=None, norm_cfg=norm_cfg, dcn=None)
        self.add_module(f'layer{stage + 1}', layer)
        if norm_eval and norm_cfg.get('type') in ('BN', 'BN2d') and not norm_cfg.get('requires_grad', True):
            FrozenBatchNorm2d.convert(self)

    def forward(self, x: Tensor) -> Tensor:
        return getattr(self, f'layer{self.stage + 1}')(x)

    def train(self, mode: bool = True) -> 'ResLayer':
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
