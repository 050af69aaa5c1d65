"""``SamplingResult``: the positive and negative priors a sampler picked, with their targets."""
import torch
from torch import Tensor

from ..assigners.assign_result import AssignResult


class SamplingResult:
    """Sampled priors of one image and the gts the positives are matched to.

    Args:
        pos_inds: (P,) long indices of positive priors into ``priors``.
        neg_inds: (Q,) long indices of negative priors.
        priors: (N, 4) all priors (with the gts prepended if the sampler added them).
        gt_bboxes: (G, 4) ground-truth boxes.
        assign_result: the assignment of ``priors`` (after ``add_gt_`` if gts were added).
        gt_flags: (N,) uint8, 1 where the prior is a prepended gt.
        avg_factor_with_neg: whether ``avg_factor`` counts negatives too.

    ``num_pos`` / ``num_neg`` are at least 1 (MMDetection's convention), so ``avg_factor``
    (num_pos + num_neg, or num_pos) can divide a loss safely.
    """

    def __init__(self, pos_inds: Tensor, neg_inds: Tensor, priors: Tensor, gt_bboxes: Tensor,
                 assign_result: AssignResult, gt_flags: Tensor, avg_factor_with_neg: bool = True) -> None:
        self.pos_inds = pos_inds
        self.neg_inds = neg_inds
        self.num_pos = max(pos_inds.numel(), 1)
        self.num_neg = max(neg_inds.numel(), 1)
        self.avg_factor_with_neg = avg_factor_with_neg
        self.avg_factor = self.num_pos + self.num_neg if avg_factor_with_neg else self.num_pos
        self.pos_priors = priors[pos_inds]
        self.neg_priors = priors[neg_inds]
        self.pos_is_gt = gt_flags[pos_inds]
        self.num_gts = gt_bboxes.shape[0]
        self.pos_assigned_gt_inds = assign_result.gt_inds[pos_inds] - 1
        self.pos_gt_labels = assign_result.labels[pos_inds]
        if gt_bboxes.numel() == 0:
            # No gts means no positives; keep a (0, 4) tensor so callers can still cat it.
            self.pos_gt_bboxes = gt_bboxes.reshape(-1, 4)
        else:
            self.pos_gt_bboxes = gt_bboxes.reshape(-1, 4)[self.pos_assigned_gt_inds]

    @property
    def priors(self) -> Tensor:
        """(P + Q, 4) positives then negatives: the order of the RoI head's targets."""
        return torch.cat([self.pos_priors, self.neg_priors])

    # MMDetection 2.x names, still read by some heads.
    @property
    def bboxes(self) -> Tensor:
        return self.priors

    @property
    def pos_bboxes(self) -> Tensor:
        return self.pos_priors

    @property
    def neg_bboxes(self) -> Tensor:
        return self.neg_priors

    def __repr__(self) -> str:
        return (f'<{self.__class__.__name__}(num_gts={self.num_gts}, pos_inds={self.pos_inds.numel()}, '
                f'neg_inds={self.neg_inds.numel()}, avg_factor={self.avg_factor})>')
