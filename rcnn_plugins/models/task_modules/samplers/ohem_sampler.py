"""``OHEMSampler``: online hard example mining (Shrivastava et al., 2016) with MMDetection's semantics.

Where ``RandomSampler`` would pick a random subset of the positive (or negative) RoIs, this picks the
ones the box head currently gets most wrong: all candidates go through the RoI head's box branch
without gradient, and the ``num_expected`` with the highest per-RoI classification loss are kept
(positives against their gt class, negatives against background). When there are no more
candidates than wanted, all of them are kept, as with random sampling.
"""
from typing import List, Optional

import torch
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from rcnn_plugins.structures import bbox2roi
from ..assigners.assign_result import AssignResult
from .random_sampler import RandomSampler


@TASK_UTILS.register_module()
class OHEMSampler(RandomSampler):
    """Hardest-loss sampling of RoIs for the RoI head.

    Args:
        num, pos_fraction, neg_pos_ub, add_gt_as_proposals: as ``RandomSampler``.
        context: the RoI head (``StandardRoIHead`` passes itself when it builds its sampler); its
            ``_bbox_forward(feats, rois)`` and ``bbox_head.loss_cls`` score the candidates.
        loss_key: the loss that ranks them; only ``'loss_cls'`` (the box loss needs regression
            targets, which are not known before sampling).

    ``sample(..., feats=...)`` needs the image's feature maps, per level (1, C, H_l, W_l).
    """

    def __init__(self, num: int, pos_fraction: float, context=None, neg_pos_ub: float = -1,
                 add_gt_as_proposals: bool = True, loss_key: str = 'loss_cls') -> None:
        super().__init__(num, pos_fraction, neg_pos_ub=neg_pos_ub, add_gt_as_proposals=add_gt_as_proposals)
        if context is None or not hasattr(context, 'bbox_head') or not hasattr(context, '_bbox_forward'):
            raise TypeError('OHEMSampler needs context=the RoI head (with bbox_head and _bbox_forward); it is '
                            'meant for train_cfg.rcnn.sampler, where StandardRoIHead passes itself')
        if loss_key != 'loss_cls':
            raise ValueError(f"OHEMSampler: loss_key must be 'loss_cls', got {loss_key!r}")
        self.context = context
        self.loss_key = loss_key

    def hard_mining(self, inds: Tensor, num_expected: int, priors: Tensor, labels: Tensor,
                    feats: Optional[List[Tensor]]) -> Tensor:
        """The ``num_expected`` of ``inds`` (K,) with the highest loss, sorted by index.

        Args:
            inds: (K,) candidate indices into ``priors`` (N, 4) (boxes in input-image pixels).
            labels: (K,) long classification targets of the candidates (``num_classes`` = background).
            feats: the image's feature maps, per level (1, C, H_l, W_l).
        """
        if feats is None:
            raise ValueError('OHEMSampler.sample needs feats= (the image feature maps); StandardRoIHead '
                             'passes them, the RPN does not: use RandomSampler in train_cfg.rpn')
        with torch.no_grad():
            rois = bbox2roi([priors[inds]])
            cls_score, _ = self.context._bbox_forward(feats, rois)
            loss = self.context.bbox_head.loss_cls(cls_score.float(), labels, cls_score.new_ones(labels.numel()),
                                                   reduction_override='none')
            top = loss.topk(num_expected).indices
        return inds[top].sort().values

    def _sample_pos(self, assign_result: AssignResult, num_expected: int, priors: Tensor, feats=None,
                    **kwargs) -> Tensor:
        inds = torch.nonzero(assign_result.gt_inds > 0).reshape(-1)
        if inds.numel() <= num_expected:
            return inds
        return self.hard_mining(inds, num_expected, priors, assign_result.labels[inds], feats)

    def _sample_neg(self, assign_result: AssignResult, num_expected: int, priors: Tensor, feats=None,
                    **kwargs) -> Tensor:
        inds = torch.nonzero(assign_result.gt_inds == 0).reshape(-1)
        if inds.numel() <= num_expected:
            return inds
        labels = inds.new_full((inds.numel(),), self.context.bbox_head.num_classes)
        return self.hard_mining(inds, num_expected, priors, labels, feats)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num={self.num}, pos_fraction={self.pos_fraction}, '
                f'neg_pos_ub={self.neg_pos_ub}, add_gt_as_proposals={self.add_gt_as_proposals}, '
                f'loss_key={self.loss_key!r})')
