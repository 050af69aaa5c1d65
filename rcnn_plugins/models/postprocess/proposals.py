"""RPN proposal selection of one image (``RPNHead.predict_by_feat`` and the export wrapper)."""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..layers.nms import class_wise_nms
from .graph import topk_at_most


def rpn_level_maps(cls_score: Tensor, bbox_pred: Tensor, cls_out_channels: int,
                   use_sigmoid: bool) -> Tuple[Tensor, Tensor]:
    """One level's head maps of one image -> objectness (N,) and deltas (N, 4), float32.

    Args:
        cls_score: (A * cls_out_channels, H, W) logits; bbox_pred: (A * 4, H, W) deltas.
        Rows are ordered (y, x, anchor), as ``AnchorGenerator.grid_priors``.
    """
    cls = cls_score.detach().float().permute(1, 2, 0).reshape(-1, cls_out_channels)
    reg = bbox_pred.detach().float().permute(1, 2, 0).reshape(-1, 4)
    scores = cls.sigmoid()[:, 0] if use_sigmoid else cls.softmax(-1)[:, 0]
    return scores, reg


def rpn_proposals(level_scores: Sequence[Tensor], level_deltas: Sequence[Tensor], level_anchors: Sequence[Tensor],
                  bbox_coder, img_hw: Tensor, cfg: dict,
                  scale_factor: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Proposals of one image: per level the ``nms_pre`` best anchors, decoded and clipped to the
    image, optionally rescaled, small boxes dropped, NMS per level, the best ``max_per_img``.

    Args:
        level_scores / level_deltas / level_anchors: per level (N_l,), (N_l, 4), (N_l, 4) (see
            :func:`rpn_level_maps`; anchors in input pixels).
        bbox_coder: decodes deltas against anchors (``decode(anchors, deltas, max_shape=...)``).
        img_hw: (2,) float (h, w) of the image in the input tensor, the clipping bounds.
        cfg: ``nms_pre`` (<= 0: all), ``min_bbox_size`` (< 0: no filter), ``nms``, ``max_per_img``.
        scale_factor: (4,) (w, h, w, h) divisor giving original-image pixels, or None.

    Returns:
        boxes (K, 4) xyxy and scores (K,) by descending score, K <= ``max_per_img``.
    """
    nms_pre = cfg.get('nms_pre', -1)
    boxes: List[Tensor] = []
    scores: List[Tensor] = []
    level_ids: List[Tensor] = []
    for lvl, (score, deltas, anchors) in enumerate(zip(level_scores, level_deltas, level_anchors)):
        if nms_pre > 0:
            score, inds = topk_at_most(score, nms_pre)
            deltas, anchors = deltas[inds], anchors[inds]
        boxes.append(bbox_coder.decode(anchors.float(), deltas, max_shape=img_hw))
        scores.append(score)
        level_ids.append(torch.full_like(score, lvl, dtype=torch.long))
    box, score, ids = torch.cat(boxes), torch.cat(scores), torch.cat(level_ids)
    bound = img_hw.max()
    if scale_factor is not None:
        box = box / scale_factor
        bound = bound / scale_factor.min()
    min_size = cfg.get('min_bbox_size', -1)
    if min_size >= 0:
        wh = box[:, 2:] - box[:, :2]
        keep = ((wh[:, 0] > min_size) & (wh[:, 1] > min_size)).nonzero().squeeze(1)
        box, score, ids = box[keep], score[keep], ids[keep]
    keep, kept_scores = class_wise_nms(box, score, ids, cfg['nms'], bound)  # soft-NMS: decayed scores
    return box[keep[:cfg['max_per_img']]], kept_scores[:cfg['max_per_img']]
