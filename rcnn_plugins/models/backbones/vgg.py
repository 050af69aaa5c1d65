"""VGG backbone (Simonyan & Zisserman, 2015), registered as ``'VGG'``: the paper's Faster R-CNN network.

Built on ``mmcv.cnn.VGG``, whose ``features.N`` layers are laid out exactly as torchvision's
``vgg11/13/16/19(_bn)().features``, so a torchvision ImageNet state dict loads unchanged
(``init_cfg=dict(type='Pretrained', checkpoint='torchvision://vgg16')`` or a local path; its
``classifier.*`` keys are left for the box head, see ``PretrainedFCBBoxHead``). What this class adds to
mmcv's: mmengine ``init_cfg`` initialisation, freezing at construction (not only in ``train()``), an
always-tuple output, and Faster R-CNN's defaults: conv5_3 after its ReLU, no last max-pool (stride 16).
"""
from typing import Sequence, Tuple

import torch
from mmcv.cnn import VGG as MMCVVGG
from mmengine.model import BaseModule

from rcnn_plugins.registry import MODELS
from ..pretrained import check_init_cfg_cached


@MODELS.register_module()
class VGG(MMCVVGG, BaseModule):
    """VGG-11/13/16/19 conv layers returning the outputs of the stages in ``out_indices``.

    Stage ``i`` (0-based) is conv``i+1``_x (and its ReLUs / BNs) followed by its 2x2 max-pool, except
    that with ``with_last_pool=False`` the last stage ends at its last ReLU. With the defaults the
    output is conv5_3 after its ReLU: 512 channels at stride 16, torchvision's ``features[:30]``.

    Args:
        depth: 11, 13, 16 or 19.
        with_bn: a BatchNorm after every conv (torchvision's ``vgg16_bn`` layout).
        num_stages: 1..5 stages built.
        dilations: per stage, the convs' dilation.
        out_indices: stages whose outputs ``forward`` returns (in stage order).
        frozen_stages: stages ``0..frozen_stages-1`` are kept in eval mode with ``requires_grad=False``
            (-1 or 0: nothing frozen). 2 is the paper's choice: conv1_x and conv2_x frozen,
            "fine-tune conv3_1 and up".
        bn_eval, bn_frozen: keep BatchNorms in eval mode / also freeze their affine parameters.
        ceil_mode: max-pools round their output size up (torchvision: down).
        with_last_pool: keep the max-pool after the last stage (stride 32).
        init_cfg: mmengine init config; ``None`` gives Kaiming convs and unit BatchNorms.

    ``forward(x (B, 3, H, W))`` returns a tuple with, per ``i`` in ``out_indices``, a
    ``(B, min(64 * 2**i, 512), H / 2**s, W / 2**s)`` map, ``s = i + 1`` after a pool, ``s = i`` for a
    last stage without it (floor division per pool, as ``nn.MaxPool2d``).
    """

    def __init__(self,
                 depth: int,
                 with_bn: bool = False,
                 num_stages: int = 5,
                 dilations: Sequence[int] = (1, 1, 1, 1, 1),
                 out_indices: Sequence[int] = (4, ),
                 frozen_stages: int = -1,
                 bn_eval: bool = True,
                 bn_frozen: bool = False,
                 ceil_mode: bool = False,
                 with_last_pool: bool = False,
                 init_cfg=None) -> None:
        if depth not in self.arch_settings:
            raise KeyError(f'invalid depth {depth!r} for VGG; allowed depths: {sorted(self.arch_settings)}')
        if not 1 <= num_stages <= 5:
            raise ValueError(f'VGG: num_stages must be in 1..5, got {num_stages}')
        if len(dilations) != num_stages:
            raise ValueError(f'VGG: dilations {tuple(dilations)} need one value per stage ({num_stages} stages)')
        if not out_indices or any(not 0 <= i < num_stages for i in out_indices):
            raise ValueError(f'VGG: out_indices {tuple(out_indices)} must be non-empty stage indices in '
                             f'0..{num_stages - 1}')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'VGG: frozen_stages must be in -1..{num_stages}, got {frozen_stages}')
        # mmcv's VGG calls super().__init__(), which (by the MRO) is BaseModule's with init_cfg=None;
        # num_classes=-1: no classifier, its fc layers belong to the box head.
        super().__init__(depth, with_bn=with_bn, num_classes=-1, num_stages=num_stages, dilations=dilations,
                         out_indices=tuple(out_indices), frozen_stages=frozen_stages, bn_eval=bn_eval,
                         bn_frozen=bn_frozen, ceil_mode=ceil_mode, with_last_pool=with_last_pool)
        self.init_cfg = init_cfg if init_cfg is not None else [
            dict(type='Kaiming', layer='Conv2d'), dict(type='Constant', val=1, layer='BatchNorm2d')]
        self.out_channels = [min(64 * 2**i, 512) for i in self.out_indices]
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        for i in range(max(self.frozen_stages, 0)):
            for j in range(*self.range_sub_modules[i]):
                module = self.features[j]
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def train(self, mode: bool = True) -> 'VGG':
        """Set train/eval mode, keeping frozen stages (and, with ``bn_eval``, BatchNorms) in eval."""
        # mmcv's train() does the BN handling and the freezing; it returns None.
        super().train(mode)
        return self

    def init_weights(self) -> None:
        """Initialise from ``init_cfg``; a ``torchvision://`` checkpoint must already be in the hub cache."""
        check_init_cfg_cached(self.init_cfg)
        # mmengine's init (init_cfg), not mmcv's init_weights(pretrained), which comes first in the MRO.
        BaseModule.init_weights(self)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        for i, (start, end) in enumerate(self.range_sub_modules):
            for j in range(start, end):
                x = self.features[j](x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

