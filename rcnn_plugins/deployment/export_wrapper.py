"""``DetectorExportWrapper``: a Faster R-CNN's whole predict path as one tensor -> tensors module.

``TwoStageDetector.predict`` works on ``DetDataSample`` / ``InstanceData`` batches; this wrapper
runs the same computation for one image with tensors only, through the very functions the eager
heads call per image (``models/postprocess``: ``rpn_level_maps`` + ``rpn_proposals``,
``rcnn_detections``) and the detector's own modules (``extract_feat``, the RPN head, the anchor
generator, the RoI extractor, the box head), so that ``torch.onnx.export`` / ``torch.export``
record it once for every input:

    image (1, 3, H, W) normalised and padded -> boxes (K, 4) xyxy in pixels of that tensor,
                                                scores (K,), labels (K,) int64, K <= max_per_img

Boxes are clipped to the tensor (H, W), as ``predict`` does with ``img_shape = (H, W)``; mapping
them back to the original image is the caller's (``rcnn_plugins.deployment.postprocess``).
Sizes, top-k counts and the clipping bounds are read from the tensor's shape in the graph, so an
export with dynamic H, W stays correct at other sizes.
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..models.postprocess import rcnn_detections, rpn_level_maps, rpn_proposals


class DetectorExportWrapper(nn.Module):
    """Export view of a ``TwoStageDetector`` with an ``RPNHead`` and a ``StandardRoIHead``.

    Args:
        detector: the built detector (its ``test_cfg`` sets proposal counts, thresholds, NMS).
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        if not (hasattr(detector, 'rpn_head') and hasattr(detector, 'roi_head')):
            raise TypeError(f'DetectorExportWrapper needs a two-stage detector with rpn_head and roi_head, '
                            f'got {type(detector).__name__}')
        self.detector = detector
        from ..models.dense_heads import CascadeRPNHead
        if isinstance(detector.rpn_head, CascadeRPNHead):
            # Its proposals come from per-image refined anchors, not the generator's grid recorded here.
            raise TypeError('DetectorExportWrapper: cannot export CascadeRPNHead (its second stage regresses the '
                            'first stage\'s boxes, not grid anchors); run this model eagerly (predict / '
                            'tools/test.py) instead')
        self._check_roi_head(detector.roi_head)
        # The wrapper itself in eval mode too: exporters restore the wrapper's mode afterwards,
        # which would otherwise put the detector's BatchNorm layers into training mode.
        self.eval()

    @staticmethod
    def _check_roi_head(roi_head: nn.Module) -> None:
        """Refuse RoI heads whose predict path is not ``StandardRoIHead``'s one box head on one RoI
        extractor with a delta coder: recording the standard path for them would export a different
        (wrong) model rather than fail."""
        from ..models.roi_heads import StandardRoIHead
        cls = type(roi_head)
        reason = None
        if not isinstance(roi_head, StandardRoIHead) or cls.predict is not StandardRoIHead.predict \
                or cls._bbox_forward is not StandardRoIHead._bbox_forward:
            reason = 'its predict path differs from StandardRoIHead (cascade stages, grid head, trident branches...)'
        elif getattr(roi_head, 'with_shared_head', False):
            reason = 'it has a shared_head (C4), which the exported path does not run'
        elif hasattr(roi_head.bbox_head, 'bbox_pred_split') or not getattr(roi_head.bbox_head, 'with_reg', True):
            reason = 'its box head does not predict box deltas (SABL buckets, or with_reg=False)'
        if reason is not None:
            raise TypeError(f'DetectorExportWrapper: cannot export {cls.__name__} with '
                            f'{type(roi_head.bbox_head).__name__}: {reason}; only Faster R-CNN-style RoI heads '
                            'export. Run this model eagerly (predict / tools/test.py) instead')

    def forward(self, image: Tensor, img_hw: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """(1, 3, H, W) float -> boxes (K, 4), scores (K,), labels (K,).

        ``img_hw``: (2,) float (h, w) of the image inside the padded tensor, to clip to as
        ``predict`` clips to ``img_shape``; default the whole tensor.
        """
        feats = self.detector.extract_feat(image)
        # (2,) = (h, w) of the input, taken from the graph's shape so dynamic sizes clip right.
        # (Counting ones keeps the sizes symbolic for both ONNX tracing and torch.export.)
        hw = img_hw if img_hw is not None else torch.stack(
            [torch.ones_like(image[0, 0, :, 0]).sum(), torch.ones_like(image[0, 0, 0, :]).sum()])
        proposals = self.proposals(feats, hw)
        return self.detections(feats, proposals, hw)

    def proposals(self, feats: Sequence[Tensor], hw: Tensor) -> Tensor:
        """RPN proposals of the image (P, 4), as ``RPNHead.predict_by_feat``."""
        head = self.detector.rpn_head
        cls_scores, bbox_preds = head(feats)
        anchors = head.prior_generator.grid_priors([c.shape[-2:] for c in cls_scores], device=feats[0].device)
        maps = [rpn_level_maps(c[0], r[0], head.cls_out_channels, head.use_sigmoid_cls)
                for c, r in zip(cls_scores, bbox_preds)]
        boxes, _ = rpn_proposals([m[0] for m in maps], [m[1] for m in maps], anchors, head.bbox_coder, hw,
                                 head.test_cfg)
        return boxes

    def detections(self, feats: Sequence[Tensor], proposals: Tensor, hw: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Box head on the proposals, then ``rcnn_detections``, as ``StandardRoIHead.predict_bbox``."""
        roi_head = self.detector.roi_head
        rois = torch.cat([proposals.new_zeros(proposals.size(0), 1), proposals], dim=1)
        cls_score, bbox_pred = roi_head.bbox_head(roi_head.bbox_roi_extractor(feats, rois))
        head = roi_head.bbox_head
        return rcnn_detections(proposals, cls_score, bbox_pred, head.bbox_coder, hw, roi_head.test_cfg,
                               activation=head.cls_activation if getattr(head, 'custom_cls_channels', False) else None)

