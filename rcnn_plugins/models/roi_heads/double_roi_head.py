"""``DoubleHeadRoIHead``: Double-Head R-CNN (Wu et al., 2020, "Rethinking Classification and
Localization for Object Detection"): fully connected layers classify, convolutions regress, and the
regression branch pools from RoIs enlarged by ``reg_roi_scale_factor`` (more context around the box).
MMDetection's name, arguments and keys; its box head is ``DoubleConvFCBBoxHead``."""
from typing import Sequence, Tuple

from torch import Tensor

from ...registry import MODELS
from .standard_roi_head import StandardRoIHead


@MODELS.register_module()
class DoubleHeadRoIHead(StandardRoIHead):
    """StandardRoIHead whose box head reads two RoI features: the RoI's own (classification) and the
    RoI scaled by ``reg_roi_scale_factor`` around its centre (regression; 1.3 in the paper's config).

    Args:
        reg_roi_scale_factor: width/height factor of the regression branch's RoIs.
        **kwargs: ``StandardRoIHead`` arguments.
    """

    def __init__(self, reg_roi_scale_factor: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reg_roi_scale_factor = reg_roi_scale_factor

    def _bbox_forward(self, x: Sequence[Tensor], rois: Tensor) -> Tuple[Tensor, Tensor]:
        """(R, 5) rois -> cls_score (R, num_classes + 1) from the RoIs' features, bbox_pred (R, 4C or 4)
        from the enlarged RoIs' features (same pyramid level: chosen from the RoI's own size)."""
        feats = x[:self.bbox_roi_extractor.num_inputs]
        cls_feats = self.bbox_roi_extractor(feats, rois)
        reg_feats = self.bbox_roi_extractor(feats, rois, roi_scale_factor=self.reg_roi_scale_factor)
        if self.with_shared_head:
            cls_feats, reg_feats = self.shared_head(cls_feats), self.shared_head(reg_feats)
        return self.bbox_head(cls_feats, reg_feats)
