"""``GenericRoIExtractor``: GRoIE (Rossi et al., 2020, "A novel Region of Interest Extraction Layer for
Instance Segmentation"): every RoI is pooled from *every* pyramid level, each pooled map optionally
goes through a pre-processing module, the maps are summed (or concatenated), and the result
optionally goes through a post-processing module (the paper's best: a 5x5 conv before, a
``GeneralizedAttention`` block after). MMDetection's name, arguments and keys (``pre_module.*``,
``post_module.*``); the modules are mmcv plugin layers (``ConvModule``, ``GeneralizedAttention``, ...
from ``mmcv.cnn``, pure PyTorch in mmcv-lite)."""
from typing import Optional, Sequence

import torch
from mmcv.cnn.bricks import build_plugin_layer
from torch import Tensor

from ....registry import MODELS
from .single_level_roi_extractor import SingleRoIExtractor


@MODELS.register_module()
class GenericRoIExtractor(SingleRoIExtractor):
    """Pool each RoI from all levels and aggregate.

    Args:
        aggregation: ``'sum'`` (output ``out_channels`` = each level's channels) or ``'concat'``
            (``out_channels`` = the sum of the levels' channels).
        pre_cfg: plugin layer config applied to each level's pooled (R, C, oh, ow) map, shared by levels.
        post_cfg: plugin layer config applied to the aggregated map.
        **kwargs: ``SingleRoIExtractor`` arguments (``roi_layer``, ``out_channels``, ``featmap_strides``).
    """

    def __init__(self, aggregation: str = 'sum', pre_cfg: Optional[dict] = None, post_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if aggregation not in ('sum', 'concat'):
            raise ValueError(f"GenericRoIExtractor: aggregation must be 'sum' or 'concat', got {aggregation!r}")
        self.aggregation = aggregation
        self.with_pre = pre_cfg is not None
        self.with_post = post_cfg is not None
        if self.with_post:
            self.post_module = build_plugin_layer(post_cfg, '_post_module')[1]
        if self.with_pre:
            self.pre_module = build_plugin_layer(pre_cfg, '_pre_module')[1]

    def forward(self, feats: Sequence[Tensor], rois: Tensor, roi_scale_factor: Optional[float] = None) -> Tensor:
        """Per level (B, C, H_l, W_l), (R, 5) rois -> (R, out_channels, oh, ow)."""
        if rois.dim() != 2 or rois.size(1) != 5:
            raise ValueError(f'GenericRoIExtractor: rois must be (R, 5) [batch_idx, x1, y1, x2, y2], '
                             f'got shape {tuple(rois.shape)}')
        num_levels = min(self.num_inputs, len(feats))
        out = feats[0].new_zeros(rois.size(0), self.out_channels, *self.output_size)
        if rois.size(0) == 0:
            return out
        rois = rois.to(feats[0].dtype)
        if num_levels == 1:  # MMDetection: a single level is plain pooling, without pre/post modules
            return self.roi_layers[0](feats[0], rois)
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        pooled = []
        for i in range(num_levels):
            level = self.roi_layers[i](feats[i], rois)
            pooled.append(self.pre_module(level) if self.with_pre else level)
        if self.aggregation == 'sum':
            out = sum(pooled)
        else:
            out = torch.cat(pooled, dim=1)
            if out.size(1) != self.out_channels:
                raise ValueError(f'GenericRoIExtractor: concatenated levels have {out.size(1)} channels but '
                                 f'out_channels is {self.out_channels}')
        return self.post_module(out) if self.with_post else out
