"""``DetectorExportWrapper``: a Faster R-CNN's whole predict path as one tensor -> tensors module.

``TwoStageDetector.predict`` works on ``DetDataSample`` / ``InstanceData`` and takes Python branches
on data-dependent sizes (empty levels, empty images), which a graph exporter cannot follow. This
wrapper runs the same computation for one image with tensors only, calling the detector's own
components (``extract_feat``, the RPN head's convs, anchor generator and box coder, the RoI
extractor's level mapping and RoIAlign layers, the box head, ``multiclass_nms``), so that
``torch.onnx.export`` records it once for every input:

    image (1, 3, H, W) normalised and padded -> boxes (K, 4) xyxy in pixels of that tensor,
                                                scores (K,), labels (K,) int64, K <= max_per_img

Boxes are clipped to the tensor (H, W), as ``predict`` does with ``img_shape = (H, W)``; mapping
them back to the original image is the caller's (``rcnn_plugins.deployment.postprocess``).
Sizes, top-k counts and the clipping bounds are read from the tensor's shape in the graph, so an
export with dynamic H, W stays correct at other sizes.
"""
from typing import List, Sequence, Tuple

import torch
from torch import Tensor, nn
from torchvision.models.detection._utils import _topk_min
from torchvision.ops import nms

from ..models.layers.nms import _parse_nms_cfg


def class_wise_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, nms_cfg: dict, max_coordinate: Tensor) -> Tensor:
    """Indices (K,) of the boxes kept by NMS done separately per ``idxs``, by descending score.

    torchvision's coordinate-offset strategy (what its ``batched_nms`` does when traced): each
    category's boxes are shifted by ``idx * (max_coordinate + 1)`` so that categories never
    overlap, then one NMS. ``max_coordinate`` bounds the coordinates (the clipped boxes lie in
    the image), so no reduction over a possibly empty set and no size-dependent branch is needed.
    """
    iou_threshold, max_num, class_agnostic = _parse_nms_cfg(nms_cfg, False)
    if not class_agnostic:
        boxes = boxes + (idxs.to(boxes.dtype) * (max_coordinate + 1))[:, None]
    keep = nms(boxes, scores, iou_threshold)
    return keep[:max_num] if max_num > 0 else keep


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
        # The wrapper itself in eval mode too: exporters restore the wrapper's mode afterwards,
        # which would otherwise put the detector's BatchNorm layers into training mode.
        self.eval()

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(1, 3, H, W) float -> boxes (K, 4), scores (K,), labels (K,)."""
        feats = self.detector.extract_feat(image)
        # (1, 2) = (h, w) of the input, taken from the graph's shape so dynamic sizes clip right.
        # (Counting ones keeps the sizes symbolic for both ONNX tracing and torch.export.)
        hw = torch.stack([torch.ones_like(image[0, 0, :, 0]).sum(), torch.ones_like(image[0, 0, 0, :]).sum()])[None]
        proposals = self.proposals(feats, hw)
        return self.detections(feats, proposals, hw)

    def proposals(self, feats: Sequence[Tensor], hw: Tensor) -> Tensor:
        """RPN proposals of the image (P, 4), as ``RPNHead.predict_by_feat``."""
        head = self.detector.rpn_head
        cfg = head.test_cfg
        cls_scores, bbox_preds = head(feats)
        nms_pre = cfg.get('nms_pre', -1)
        gen = head.prior_generator
        if gen.stride_from_input_size:
            strides: List = gen._level_strides([tuple(c.shape[-2:]) for c in cls_scores])
        else:
            strides = [None] * len(cls_scores)
        boxes, scores, level_ids = [], [], []
        for lvl, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
            anchors = gen.single_level_grid_priors(cls.shape[-2:], lvl, device=cls.device, stride=strides[lvl])
            cls = cls[0].permute(1, 2, 0).reshape(-1, head.cls_out_channels)
            reg = reg[0].permute(1, 2, 0).reshape(-1, 4)
            score = cls.sigmoid()[:, 0] if head.use_sigmoid_cls else cls.softmax(-1)[:, 0]
            if nms_pre > 0:
                # k = min(nms_pre, anchors of the level) as a graph value, not the traced size's.
                k = _topk_min(score, nms_pre, 0) if torch.jit.is_tracing() else torch.sym_min(nms_pre, score.size(0))
                score, inds = score.topk(k)
                reg, anchors = reg[inds], anchors[inds]
            boxes.append(head.bbox_coder.decode(anchors[None], reg[None], max_shape=hw)[0])
            scores.append(score)
            level_ids.append(torch.full_like(score, lvl, dtype=torch.long))
        boxes, scores, level_ids = torch.cat(boxes), torch.cat(scores), torch.cat(level_ids)
        min_size = cfg.get('min_bbox_size', -1)
        if min_size >= 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            keep = ((wh[:, 0] > min_size) & (wh[:, 1] > min_size)).nonzero().squeeze(1)
            boxes, scores, level_ids = boxes[keep], scores[keep], level_ids[keep]
        keep = class_wise_nms(boxes, scores, level_ids, cfg['nms'], hw.max())
        return boxes[keep[:cfg['max_per_img']]]

    def detections(self, feats: Sequence[Tensor], proposals: Tensor, hw: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Box head on the proposals, decode, class-wise NMS, as ``BBoxHead.predict_by_feat`` and
        ``multiclass_nms``."""
        roi_head = self.detector.roi_head
        cfg = roi_head.test_cfg
        rois = torch.cat([proposals.new_zeros(proposals.size(0), 1), proposals], dim=1)
        cls_score, bbox_pred = roi_head.bbox_head(self.roi_features(feats, rois))
        head = roi_head.bbox_head
        scores = cls_score.float().softmax(-1)
        # (1, P, 4 * C): each class's deltas decoded against the same proposal.
        bboxes = head.bbox_coder.decode(proposals[None], bbox_pred.float()[None], max_shape=hw)[0]
        min_size = cfg.get('min_bbox_size', -1)
        if min_size >= 0:
            b = bboxes.reshape(bboxes.size(0), -1, 4)
            small = ((b[..., 2:] - b[..., :2]) <= min_size).any(-1)
            scores = torch.cat([scores[:, :-1].masked_fill(small, float('-inf')), scores[:, -1:]], dim=1)
        # Every (proposal, class) pair is a candidate, row-major as multiclass_nms orders them.
        num_classes = scores.size(1) - 1
        if bboxes.size(1) == 4:  # class-agnostic regression: one box for all classes
            bboxes = bboxes.repeat(1, num_classes)
        bboxes = bboxes.reshape(-1, 4)
        labels = torch.arange(num_classes, device=scores.device).expand(scores.size(0), num_classes).reshape(-1)
        scores = scores[:, :-1].reshape(-1)
        valid = (scores > cfg['score_thr']).nonzero().squeeze(1)
        bboxes, scores, labels = bboxes[valid], scores[valid], labels[valid]
        keep = class_wise_nms(bboxes, scores, labels, cfg['nms'], hw.max())
        if cfg['max_per_img'] > 0:
            keep = keep[:cfg['max_per_img']]
        return bboxes[keep], scores[keep], labels[keep]

    def roi_features(self, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
        """(R, C, oh, ow) pooled features: ``SingleRoIExtractor`` without its empty-level branch."""
        ext = self.detector.roi_head.bbox_roi_extractor
        num_levels = ext.num_inputs
        lvls = ext.map_roi_levels(rois, num_levels)
        out = rois.new_zeros(rois.size(0), ext.out_channels, *ext.output_size)
        for i in range(num_levels):
            inds = (lvls == i).nonzero().squeeze(1)
            out = out.index_put((inds,), ext.roi_layers[i](feats[i], rois[inds]))
        return out
