"""Second-stage post-processing of one image (``BBoxHead.predict_by_feat`` and the export wrapper)."""
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..layers.nms import class_wise_nms


def rcnn_detections(proposals: Tensor, cls_score: Tensor, bbox_pred: Tensor, bbox_coder, img_hw: Tensor,
                    cfg: dict, scale_factor: Optional[Tensor] = None,
                    activation: Optional[Callable[[Tensor], Tensor]] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Detections of one image from the box head's outputs on its proposals.

    Softmax (or ``activation``), each class's deltas decoded against its proposal and clipped to the image, class boxes
    not wider and higher than ``min_bbox_size`` given score -inf, optional rescale, then every
    (proposal, class) pair above ``score_thr`` (row-major, as ``multiclass_nms``) through
    class-wise NMS, the best ``max_per_img``.

    Args:
        proposals: (P, 4) xyxy in input pixels.
        cls_score: (P, C + 1) logits, background last; bbox_pred: (P, 4 * C) or (P, 4) deltas.
        bbox_coder: decodes deltas (``decode(priors, deltas, max_shape=...)``).
        img_hw: (2,) float (h, w) of the image in the input tensor.
        cfg: ``score_thr``, ``nms``, ``max_per_img`` (<= 0: all), ``min_bbox_size`` (< 0: none).
        scale_factor: (4,) (w, h, w, h) divisor giving original-image pixels, or None.
        activation: (P, channels) logits -> (P, C + 1) scores, background last (a custom classification
            loss's ``get_activation``, e.g. per-class sigmoid); None: softmax over the C + 1 logits.

    Returns:
        boxes (K, 4), scores (K,) descending, labels (K,) int64 in [0, C).
    """
    scores = F.softmax(cls_score.float(), dim=-1) if activation is None else activation(cls_score.float())
    num_rois, num_classes = scores.size(0), scores.size(1) - 1
    bboxes = bbox_coder.decode(proposals.float(), bbox_pred.float(), max_shape=img_hw)
    per_class = bboxes.reshape(num_rois, -1, 4)  # (P, C or 1, 4)
    min_size = cfg.get('min_bbox_size', -1)
    if min_size >= 0:
        # A too-small class box can never pass the score threshold; its box stays put.
        small = ((per_class[..., 2:] - per_class[..., :2]) <= min_size).any(-1)
        scores = torch.cat([scores[:, :-1].masked_fill(small, float('-inf')), scores[:, -1:]], dim=1)
    bound = img_hw.max()
    if scale_factor is not None:
        per_class = per_class / scale_factor
        bound = bound / scale_factor.min()
    per_class = per_class.expand(num_rois, num_classes, 4).reshape(-1, 4)
    labels = torch.arange(num_classes, device=scores.device).expand(num_rois, num_classes).reshape(-1)
    flat = scores[:, :-1].reshape(-1)
    valid = (flat > cfg['score_thr']).nonzero().squeeze(1)
    boxes, flat, labels = per_class[valid], flat[valid], labels[valid]
    keep, kept_scores = class_wise_nms(boxes, flat, labels, cfg['nms'], bound)  # soft-NMS: decayed scores
    if cfg['max_per_img'] > 0:
        keep, kept_scores = keep[:cfg['max_per_img']], kept_scores[:cfg['max_per_img']]
    return boxes[keep], kept_scores, labels[keep]
