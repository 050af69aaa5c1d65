"""Balanced Feature Pyramid of Libra R-CNN (Pang et al., 2019), registered as ``'BFP'``.

MMDetection 3.x's arguments, defaults and ``state_dict`` keys (``refine.conv.*`` for
``refine_type='conv'``; ``refine.{g,theta,phi,conv_out}.conv.*`` for ``'non_local'``, mmcv's
``NonLocal2d``).
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, NonLocal2d
from mmengine.model import BaseModule

from rcnn_plugins.registry import MODELS


@MODELS.register_module()
class BFP(BaseModule):
    """Gather every level to the size of ``refine_level`` (adaptive max pooling from finer levels,
    nearest resize from coarser ones), average, optionally refine, and add the result back to every
    level (nearest resize to finer levels, adaptive max pooling to coarser ones).

    Args:
        in_channels: channels of every level (all levels have the same).
        num_levels: number of input levels.
        refine_level: index of the level whose size the levels are gathered at (0 = finest).
        refine_type: ``None`` (average only), ``'conv'`` (a 3x3 ``ConvModule`` with ReLU) or
            ``'non_local'`` (mmcv's embedded-Gaussian ``NonLocal2d``, ``reduction=1``, no scaling).
        conv_cfg, norm_cfg: given to the refine module.
        init_cfg: mmengine init config (default: Xavier-uniform convs, as MMDetection).

    ``forward(inputs)``: ``num_levels`` tensors ``(B, in_channels, H_l, W_l)`` -> as many tensors of
    the same shapes (each input plus the scattered balanced feature).
    """

    def __init__(self,
                 in_channels: int,
                 num_levels: int,
                 refine_level: int = 2,
                 refine_type: Optional[str] = None,
                 conv_cfg=None,
                 norm_cfg=None,
                 init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')):
        super().__init__(init_cfg)
        if refine_type not in (None, 'conv', 'non_local'):
            raise ValueError(f"BFP: refine_type must be None, 'conv' or 'non_local', got {refine_type!r}")
        if not 0 <= refine_level < num_levels:
            raise ValueError(f'BFP: refine_level must be in 0..{num_levels - 1} (num_levels={num_levels}), '
                             f'got {refine_level}')
        self.in_channels = in_channels
        self.num_levels = num_levels
        self.refine_level = refine_level
        self.refine_type = refine_type
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        if refine_type == 'conv':
            self.refine = ConvModule(in_channels, in_channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        elif refine_type == 'non_local':
            self.refine = NonLocal2d(in_channels, reduction=1, use_scale=False, conv_cfg=conv_cfg,
                                     norm_cfg=norm_cfg)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != self.num_levels:
            raise ValueError(f'BFP was built for num_levels={self.num_levels}, got {len(inputs)} levels')
        size = inputs[self.refine_level].shape[2:]
        # Max pooling keeps the strongest response of a finer level; a coarser one is repeated.
        gathered = [F.adaptive_max_pool2d(x, size) if i < self.refine_level else
                    F.interpolate(x, size=size, mode='nearest') for i, x in enumerate(inputs)]
        bsf = sum(gathered) / len(gathered)
        if self.refine_type is not None:
            bsf = self.refine(bsf)
        outs = []
        for i, x in enumerate(inputs):
            residual = (F.interpolate(bsf, size=x.shape[2:], mode='nearest') if i < self.refine_level else
                        F.adaptive_max_pool2d(bsf, x.shape[2:]))
            outs.append(x + residual)
        return tuple(outs)
