"""``SingleRoIExtractor``: pools each RoI from the one FPN level that matches its size.

Level of a RoI of scale ``s = sqrt(w * h)`` pixels: ``floor(log2(s / finest_scale + 1e-6))``
clamped to the available levels, so with ``finest_scale=56`` boxes up to 111 px use stride 4,
112-223 px stride 8, 224-447 px stride 16, 448 px and larger stride 32 (MMDetection's mapping).
With ``canonical_scale`` set, the level is torchvision's ``MultiScaleRoIAlign`` one instead:
``floor(canonical_level + log2(s / canonical_scale) + 1e-6) - log2(finest stride)``; with 224 and 4
it has the same boundaries, the two differ only in where the 1e-6 is added (within ~1e-6 of a
boundary) and in float rounding.
"""
import math
from typing import Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from ....registry import MODELS


@MODELS.register_module()
class SingleRoIExtractor(BaseModule):
    """Pool RoI features from a feature pyramid, one level per RoI.

    Args:
        roi_layer: config of the pooling layer (``RoIAlign`` / ``RoIPool`` / ``DeformRoIPoolPack`` /
            ``ModulatedDeformRoIPoolPack`` in MODELS) without
            ``spatial_scale``; one layer per stride is built with ``spatial_scale = 1 / stride``.
        out_channels: channels of the feature maps (and of the output).
        featmap_strides: strides (pixels) of the levels used, finest first.
        finest_scale: RoI scale (pixels) mapped to the finest level boundary.
        canonical_scale, canonical_level: use torchvision's level rule instead (see the module
            docstring): a RoI of ``canonical_scale`` pixels goes to pyramid level ``canonical_level``
            (stride 2 ** level). ``None`` (default): MMDetection's ``finest_scale`` rule.
    """

    def __init__(self, roi_layer: dict, out_channels: int, featmap_strides: Sequence[int],
                 finest_scale: int = 56, canonical_scale: Optional[float] = None, canonical_level: int = 4,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(roi_layer, dict) or 'type' not in roi_layer or 'output_size' not in roi_layer:
            raise ValueError("SingleRoIExtractor: roi_layer must be a dict with 'type' and 'output_size', "
                             f"e.g. dict(type='RoIAlign', output_size=7, sampling_ratio=0); got {roi_layer!r}")
        if len(featmap_strides) == 0:
            raise ValueError('SingleRoIExtractor: featmap_strides is empty; give one stride per level, '
                             'e.g. [4, 8, 16, 32]')
        self.roi_layers = nn.ModuleList(
            [MODELS.build(dict(roi_layer, spatial_scale=1.0 / s)) for s in featmap_strides])
        size = roi_layer['output_size']
        self.output_size = (size, size) if isinstance(size, int) else tuple(size)
        self.out_channels = out_channels
        self.featmap_strides = list(featmap_strides)
        self.finest_scale = finest_scale
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level
        if canonical_scale is not None:
            finest_level = math.log2(self.featmap_strides[0])
            if finest_level != int(finest_level):
                raise ValueError('SingleRoIExtractor: canonical_scale needs power-of-two featmap_strides '
                                 f'(level = log2(stride)), got {self.featmap_strides}')
            self.finest_level = int(finest_level)

    @property
    def num_inputs(self) -> int:
        """Number of pyramid levels this extractor reads (the first ``num_inputs`` of the neck)."""
        return len(self.featmap_strides)

    def map_roi_levels(self, rois: Tensor, num_levels: int) -> Tensor:
        """(R, 5) rois [batch_idx, x1, y1, x2, y2] -> (R,) long level index in [0, num_levels)."""
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        if self.canonical_scale is not None:
            # torchvision's LevelMapper, same operations in the same order (float32).
            lvls = torch.floor(self.canonical_level + torch.log2(scale / self.canonical_scale)
                               + torch.tensor(1e-6, dtype=scale.dtype)) - self.finest_level
        else:
            lvls = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        return lvls.clamp(min=0, max=num_levels - 1).long()

    @staticmethod
    def roi_rescale(rois: Tensor, scale_factor: float) -> Tensor:
        """(R, 5) rois with width and height times ``scale_factor`` around the same centre."""
        centre = (rois[:, 1:3] + rois[:, 3:5]) * 0.5
        half = (rois[:, 3:5] - rois[:, 1:3]) * (0.5 * scale_factor)
        return torch.cat([rois[:, :1], centre - half, centre + half], dim=1)

    def forward(self, feats: Sequence[Tensor], rois: Tensor, roi_scale_factor: Optional[float] = None) -> Tensor:
        """Pool features.

        Args:
            feats: per level (B, C, H_l, W_l), finest first. With more maps than
                ``featmap_strides`` only the first ``num_inputs`` are used; with fewer (as
                MMDetection) RoIs are mapped over the maps given.
            rois: (R, 5) float [batch_idx, x1, y1, x2, y2] in input-image pixels.
            roi_scale_factor: pool from each RoI enlarged (> 1) or shrunk around its centre by
                this factor; the level is still chosen from the RoI's own size (MMDetection's order).

        Returns:
            (R, C, oh, ow) pooled features, in the features' dtype.
        """
        if rois.dim() != 2 or rois.size(1) != 5:
            raise ValueError(f'SingleRoIExtractor: rois must be (R, 5) [batch_idx, x1, y1, x2, y2], '
                             f'got shape {tuple(rois.shape)}')
        num_levels = min(self.num_inputs, len(feats))
        if num_levels == 0:
            raise ValueError('SingleRoIExtractor: no feature maps given')
        # Keep box coordinates in float32 under autocast (the pooling op casts both inputs to
        # float there); outside autocast the op needs rois in the features' dtype.
        if not torch.is_autocast_enabled(feats[0].device.type):
            rois = rois.to(feats[0].dtype)
        # Unlike MMDetection, which skips it with a single level, the scale applies in every case.
        lvls = self.map_roi_levels(rois, num_levels) if num_levels > 1 else None
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        if num_levels == 1:
            return self.roi_layers[0](feats[0], rois)
        out = feats[0].new_zeros(rois.size(0), self.out_channels, *self.output_size)
        # In graph capture (export) a level's RoI count is symbolic: pool every level, no branch.
        capture = torch.jit.is_tracing() or torch.compiler.is_exporting()
        for i in range(num_levels):
            inds = (lvls == i).nonzero().squeeze(1)
            if capture or inds.numel() > 0:
                out = out.index_put((inds,), self.roi_layers[i](feats[i], rois[inds]).to(out.dtype))
            else:
                # Keep every level in the autograd graph so distributed training (DDP) sees the
                # same set of used parameters on every GPU (a learnt layer's, e.g. DeformRoIPoolPack's
                # offset fcs, included).
                out = out + feats[i].sum() * 0.
                for param in self.roi_layers[i].parameters():
                    out = out + param.sum() * 0.
        return out
