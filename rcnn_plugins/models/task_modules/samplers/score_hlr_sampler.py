"""``ScoreHLRSampler`` (PISA: "Prime Sample Attention in Object Detection", Cao et al., CVPR 2020):
random positives, and negatives ranked by their *score hierarchical local rank* (Score-HLR), with
importance weights for their classification loss (ISR-N).

Negatives, scored by the RoI head without gradient:

1. s_i = the best foreground probability of negative i; those with s_i > ``score_thr`` are valid;
2. valid negatives are grouped by NMS-match: greedy NMS at ``iou_thr`` over their decoded boxes
   (the box of their best class), each suppressed box joining the group of the first kept box
   (in score order) that suppresses it;
3. importance = V - (rank inside the group by score) + s_i (V = number of valid): first every
   group's best, then every group's second, ..., each layer by score;
4. the ``num_expected`` most important are kept (filled at random from the invalid ones); their
   weight is ``(bias + (1 - bias) * (U - rank) / U) ** k`` (U = max(num_expected, V), the random
   ones get the smallest), rescaled so the weighted loss of the picked negatives equals their
   unweighted loss.

``sample`` returns ``(SamplingResult, neg_label_weights)`` as MMDetection's does: it is meant for
a RoI head that applies the weights (PISA's ``PISARoIHead``). Without the RoI head in ``context``
it cannot score negatives.
"""
from typing import List, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor
from torchvision.ops import box_iou, nms

from rcnn_plugins.registry import TASK_UTILS
from rcnn_plugins.structures import bbox2roi
from ..assigners.assign_result import AssignResult
from .random_sampler import RandomSampler
from .sampling_result import SamplingResult


def nms_match_groups(boxes: Tensor, scores: Tensor, iou_thr: float) -> Tensor:
    """(K,) group id of each box under NMS-match: the kept box (greedy NMS, IoU > ``iou_thr``
    suppresses) that suppresses it first, or itself if kept. Group ids are indices into ``boxes``."""
    keep = nms(boxes, scores, iou_thr)  # kept, by score descending
    order = torch.argsort(scores, descending=True, stable=True)
    pos = torch.empty_like(order)
    pos[order] = torch.arange(order.numel(), device=order.device)  # score rank of every box
    # A box is suppressed by the first kept box ranked above it with IoU > thr.
    hits = (box_iou(boxes[keep], boxes) > iou_thr) & (pos[keep][:, None] < pos[None, :])  # (|keep|, K)
    first = torch.where(hits.any(0), hits.float().argmax(0), -1)  # keep is in score order: first hit
    group = torch.where(first >= 0, keep[first.clamp(min=0)], torch.arange(boxes.size(0), device=boxes.device))
    group[keep] = keep
    return group


def score_hlr_importance(group: Tensor, scores: Tensor) -> Tensor:
    """Importance V - (rank inside the group by score) + score of each of V valid boxes."""
    n = scores.numel()
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[torch.argsort(group[order], stable=True)]  # by group, then score
    _, counts = torch.unique_consecutive(group[order], return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=scores.device) - starts
    return n - rank.to(scores.dtype) + scores


@TASK_UTILS.register_module()
class ScoreHLRSampler(RandomSampler):
    """Args:
        num, pos_fraction, neg_pos_ub, add_gt_as_proposals: as :class:`RandomSampler`.
        context: the RoI head (``_bbox_forward`` and ``bbox_head`` score the negatives).
        k: exponent of the weight mapping (0.5).
        bias: shift of the weight mapping (0).
        score_thr: negatives scoring above it are ranked, the others sampled at random.
        iou_thr: IoU of the NMS-match grouping.
    """

    def __init__(self, num: int, pos_fraction: float, context=None, neg_pos_ub: float = -1,
                 add_gt_as_proposals: bool = True, k: float = 0.5, bias: float = 0, score_thr: float = 0.05,
                 iou_thr: float = 0.5, **kwargs) -> None:
        super().__init__(num, pos_fraction, neg_pos_ub=neg_pos_ub, add_gt_as_proposals=add_gt_as_proposals)
        if context is None or not hasattr(context, '_bbox_forward') or not hasattr(context, 'bbox_head'):
            raise TypeError('ScoreHLRSampler needs context=the RoI head (with bbox_head and _bbox_forward); it is '
                            'meant for train_cfg.rcnn.sampler of a RoI head that applies its negative weights '
                            '(PISARoIHead)')
        self.context = context
        self.k = k
        self.bias = bias
        self.score_thr = score_thr
        self.iou_thr = iou_thr

    def _score(self, feats: List[Tensor], rois: Tensor) -> Tuple[Tensor, Tensor]:
        out = self.context._bbox_forward(feats, rois)
        if isinstance(out, dict):  # MMDetection's RoI heads return a dict
            return out['cls_score'], out['bbox_pred']
        return out[0], out[1]

    def _sample_neg(self, assign_result: AssignResult, num_expected: int, priors: Tensor, feats=None,
                    **kwargs) -> Tuple[Tensor, Optional[Tensor]]:
        """Indices (Q,) of the picked negatives and their (Q,) loss weights."""
        neg_inds = torch.nonzero(assign_result.gt_inds == 0).reshape(-1)
        num_neg = neg_inds.numel()
        if num_neg == 0:
            return neg_inds, None
        if feats is None:
            raise ValueError('ScoreHLRSampler.sample needs feats= (the image feature maps), which the RoI head passes')
        head = self.context.bbox_head
        with torch.no_grad():
            rois = bbox2roi([priors[neg_inds]])
            cls_score, bbox_pred = self._score(feats, rois)
            cls_score = cls_score.float()
            labels = neg_inds.new_full((num_neg,), head.num_classes)
            ori_loss = head.loss_cls(cls_score, labels, cls_score.new_ones(num_neg), reduction_override='none')
            max_score, argmax_score = cls_score.softmax(-1)[:, :-1].max(-1)
            valid = max_score > self.score_thr
            valid_inds, invalid_inds = valid.nonzero().reshape(-1), (~valid).nonzero().reshape(-1)
            num_valid = valid_inds.numel()
            num_expected = min(num_neg, num_expected)
            num_hlr = min(num_valid, num_expected)
            if num_valid == 0:
                select = torch.randperm(num_neg, device=neg_inds.device)[:num_expected]
                return neg_inds[select], cls_score.new_ones(num_expected)
            deltas = bbox_pred[valid_inds].float().reshape(num_valid, -1, 4)
            if deltas.size(1) > 1:  # class-specific: the box of the best class
                deltas = deltas[torch.arange(num_valid, device=deltas.device), argmax_score[valid_inds]]
            else:
                deltas = deltas[:, 0]
            boxes = head.bbox_coder.decode(rois[valid_inds, 1:], deltas)
            valid_scores = max_score[valid_inds]
            imp = score_hlr_importance(nms_match_groups(boxes, valid_scores, self.iou_thr), valid_scores)
            imp_order = imp.argsort(descending=True)
            imp_rank = torch.empty_like(imp_order)
            imp_rank[imp_order] = torch.arange(num_valid, device=imp.device)
            hlr = imp_order[:num_expected]
            rand = invalid_inds[torch.randperm(invalid_inds.numel(), device=neg_inds.device)[:num_expected - num_hlr]]
            select = torch.cat([valid_inds[hlr], rand])
            up_bound = max(num_expected, num_valid)
            imp_weights = (up_bound - imp_rank[hlr].float()) / up_bound
            weights = torch.cat([imp_weights, imp_weights.min().expand(select.numel() - num_hlr)])
            weights = (self.bias + (1 - self.bias) * weights).pow(self.k)
            picked_loss = ori_loss[select]
            weights = weights * picked_loss.sum() / (picked_loss * weights).sum()
        return neg_inds[select], weights

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData, gt_instances: InstanceData,
               **kwargs) -> Tuple[SamplingResult, Optional[Tensor]]:
        """As :meth:`RandomSampler.sample` (``feats=`` required), returning ``(result, neg_label_weights)``."""
        priors = pred_instances.priors[:, :4]
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        gt_flags = priors.new_zeros((priors.shape[0],), dtype=torch.uint8)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            priors = torch.cat([gt_bboxes.to(priors.dtype), priors], dim=0)
            assign_result.add_gt_(gt_labels)
            gt_flags = torch.cat([gt_flags.new_ones(gt_bboxes.shape[0]), gt_flags])
        pos_inds = self._sample_pos(assign_result, int(self.num * self.pos_fraction), priors, **kwargs)
        num_expected_neg = self.num - pos_inds.numel()
        if self.neg_pos_ub >= 0:
            num_expected_neg = min(num_expected_neg, int(self.neg_pos_ub * max(1, pos_inds.numel())))
        neg_inds, neg_label_weights = self._sample_neg(assign_result, num_expected_neg, priors, **kwargs)
        result = SamplingResult(pos_inds=pos_inds, neg_inds=neg_inds, priors=priors, gt_bboxes=gt_bboxes,
                                assign_result=assign_result, gt_flags=gt_flags)
        return result, neg_label_weights

    def __repr__(self) -> str:
        return (f'ScoreHLRSampler(num={self.num}, pos_fraction={self.pos_fraction}, k={self.k}, bias={self.bias}, '
                f'score_thr={self.score_thr}, iou_thr={self.iou_thr})')
