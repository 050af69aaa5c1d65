"""The contract of this folder: what a second-stage box head must offer."""
from typing import List, Optional, Protocol, Sequence, runtime_checkable

from torch import Tensor


@runtime_checkable
class BBoxHeadProtocol(Protocol):
    """Scores and refines pooled RoI features; owns its targets, losses and post-processing.

    Attributes every head has: ``num_classes`` (foreground classes, background logit last),
    ``bbox_coder``, ``reg_class_agnostic``.
    """

    def __call__(self, x: Tensor, *args, **kwargs):
        """(R, C, h, w) pooled features -> (cls_score (R, num_classes + 1), bbox_pred (R, 4*C or 4))."""

    def loss_and_target(self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, sampling_results: Sequence,
                        rcnn_train_cfg: dict, **kwargs) -> dict:
        """Targets from the sampling results, then the losses: ``dict(loss_bbox=dict(...), bbox_targets=...)``."""

    def predict_by_feat(self, rois: Sequence[Tensor], cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor],
                        batch_img_metas: List[dict], rcnn_test_cfg: Optional[dict] = None,
                        rescale: bool = False, **kwargs) -> list:
        """Per image InstanceData(bboxes (K, 4), scores (K,), labels (K,))."""


@runtime_checkable
class TwoBranchBBoxHeadProtocol(Protocol):
    """A box head fed two pooled features, one per branch (Double-Head R-CNN: a fc branch for
    classification on the RoI, a conv branch for regression on the enlarged RoI); driven by a
    RoI head that pools both (``DoubleHeadRoIHead``). Otherwise as :class:`BBoxHeadProtocol`."""

    def __call__(self, x_cls: Tensor, x_reg: Tensor):
        """(R, C, h, w) classification features, (R, C, h, w) regression features ->
        (cls_score (R, num_classes + 1), bbox_pred (R, 4*C or 4))."""

    def loss_and_target(self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, sampling_results: Sequence,
                        rcnn_train_cfg: dict, **kwargs) -> dict:
        """As :meth:`BBoxHeadProtocol.loss_and_target`."""

    def predict_by_feat(self, rois: Sequence[Tensor], cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor],
                        batch_img_metas: List[dict], rcnn_test_cfg: Optional[dict] = None,
                        rescale: bool = False, **kwargs) -> list:
        """As :meth:`BBoxHeadProtocol.predict_by_feat`."""
