"""PISA's loss re-weighting ("Prime Sample Attention in Object Detection", Cao et al., CVPR 2020):
``isr_p`` (importance-based sample reweighting of the positives' classification loss) and
``carl_loss`` (classification-aware regression loss). Used by ``PISARoIHead``; the negatives' part
(ISR-N) is ``ScoreHLRSampler``'s.

IoU-HLR of a positive (ISR-P): rank it by the IoU of its predicted box with its gt among the
positives of the same gt (local rank), then rank all positives of the same class by
``max_l_num - local_rank + IoU`` (every gt's best first, then every gt's second, ...);
``max_l_num`` is the largest number of positives of one class in the batch.
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ...structures import bbox_overlaps


def rank_within_groups(groups: Tensor, values: Tensor) -> Tensor:
    """(N,) 0-based rank of each value inside its group, largest value first (ties: lower index first)."""
    order = torch.argsort(values, descending=True, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]  # by group, then value descending
    _, counts = torch.unique_consecutive(groups[order], return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=values.device) - starts
    return rank


def _pos_deltas(bbox_pred: Tensor, pos_inds: Tensor, pos_labels: Tensor) -> Tensor:
    """(P, 4) deltas of the positives: their gt class's, or the class-agnostic ones."""
    if bbox_pred.size(-1) > 4:
        return bbox_pred.view(bbox_pred.size(0), -1, 4)[pos_inds, pos_labels]
    return bbox_pred[pos_inds]


def isr_p(cls_score: Tensor, bbox_pred: Tensor, bbox_targets: Tuple[Tensor, Tensor, Tensor, Tensor], rois: Tensor,
          sampling_results: Sequence, loss_cls: nn.Module, bbox_coder, k: float = 2, bias: float = 0,
          num_class: int = 80) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """ISR-P: the positives' classification weights from their IoU-HLR.

    Args:
        cls_score: (R, num_class + 1) logits; bbox_pred: (R, 4 * num_class) or (R, 4) deltas.
        bbox_targets: (labels (R,), label_weights (R,), delta targets (R, 4), bbox_weights (R, 4)) in
            the order of ``rois`` (R, 5) (per image positives first).
        sampling_results: per image, ``pos_assigned_gt_inds`` of its positives.
        loss_cls: the head's classification loss (``reduction_override='none'``).
        bbox_coder: decodes the predicted and the target deltas against the RoIs.
        k, bias: weight = ``(bias + (1 - bias) * (max_l_num - rank) / max_l_num) ** k``.

    Returns:
        the targets with the positives' label weights replaced, rescaled so that their weighted
        classification loss equals the loss under the old weights.
    """
    labels, label_weights, deltas, bbox_weights = bbox_targets
    pos_inds = ((labels >= 0) & (labels < num_class)).nonzero().reshape(-1)
    if pos_inds.numel() == 0:
        return labels, label_weights, deltas, bbox_weights
    pos_labels = labels[pos_inds]
    # A batch-unique id per gt box: (image, gt index) -> image * (most gts of any image) + gt index.
    gt_inds = [res.pos_assigned_gt_inds for res in sampling_results]
    stride = max(int(g.max()) + 1 if g.numel() else 0 for g in gt_inds)
    gts = torch.cat([g + i * stride for i, g in enumerate(gt_inds)])
    if gts.numel() != pos_inds.numel():
        raise ValueError(f'isr_p: {pos_inds.numel()} positive labels but {gts.numel()} positive sampling results')
    with torch.no_grad():
        pos_rois = rois[pos_inds, 1:] if rois.size(-1) == 5 else rois[pos_inds]
        pred = bbox_coder.decode(pos_rois, _pos_deltas(bbox_pred.detach(), pos_inds, pos_labels))
        target = bbox_coder.decode(pos_rois, deltas[pos_inds])
        ious = bbox_overlaps(pred, target, is_aligned=True)
        max_l_num = pos_labels.bincount().max().to(ious.dtype)
        # Local rank among the positives of the same gt, then the rank within the class.
        key = ious + max_l_num - rank_within_groups(gts, ious).to(ious.dtype)
        l_rank = rank_within_groups(pos_labels, key).to(ious.dtype)
        weights = label_weights[pos_inds] * (max_l_num - l_rank) / max_l_num
        weights = (bias + weights * (1 - bias)).pow(k)
        loss = loss_cls(cls_score.detach()[pos_inds].float(), pos_labels, reduction_override='none')
        if loss.dim() > 1:
            loss = loss.sum(-1)
        weights = weights * (loss * label_weights[pos_inds]).sum() / (loss * weights).sum()
    label_weights = label_weights.clone()
    label_weights[pos_inds] = weights.to(label_weights.dtype)
    return labels, label_weights, deltas, bbox_weights


def carl_loss(cls_score: Tensor, labels: Tensor, bbox_pred: Tensor, bbox_targets: Tensor, loss_bbox: nn.Module,
              k: float = 1, bias: float = 0.2, avg_factor: Optional[float] = None, sigmoid: bool = False,
              num_class: int = 80) -> dict:
    """CARL: the positives' box loss weighted by their classification score of their class.

    Weight ``(bias + (1 - bias) * p) ** k``, normalised to mean 1 over the positives; ``p`` keeps
    its gradient, so the regression quality also trains the classifier (the paper's point).
    Loss = sum over positives of weight x box loss (``loss_bbox``, per coordinate) / ``avg_factor``
    (default: all R RoIs).

    Returns:
        dict(loss_carl=scalar).
    """
    pos_inds = ((labels >= 0) & (labels < num_class)).nonzero().reshape(-1)
    if pos_inds.numel() == 0:
        return dict(loss_carl=cls_score.sum() * 0.)
    pos_labels = labels[pos_inds]
    probs = cls_score.float().sigmoid() if sigmoid else cls_score.float().softmax(-1)
    weights = (bias + (1 - bias) * probs[pos_inds, pos_labels]).pow(k)
    weights = weights * pos_inds.numel() / weights.sum()
    avg_factor = bbox_targets.size(0) if avg_factor is None else avg_factor
    loss = loss_bbox(_pos_deltas(bbox_pred.float(), pos_inds, pos_labels), bbox_targets[pos_inds].float(),
                     reduction_override='none') / avg_factor
    return dict(loss_carl=(loss * weights[:, None]).sum())
