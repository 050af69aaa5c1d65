"""``MultiInstanceSamplingResult``: a :class:`SamplingResult` whose RoIs each carry ``num_instance`` targets
(CrowdDet), negatives included."""
from torch import Tensor

from ..assigners.assign_result import AssignResult
from .sampling_result import SamplingResult


class MultiInstanceSamplingResult(SamplingResult):
    """Sampled RoIs of one image with k targets each (the output of ``MultiInsRandomSampler``).

    Unlike a plain sampling result, the negatives have targets too: CrowdDet's loss scores every one
    of a RoI's k predictions against a gt or background, so a negative RoI still names its k
    best-overlapping boxes.

    Args:
        pos_inds, neg_inds: (P,), (Q,) long indices into ``priors``.
        priors: (N + G + I, 4) proposals, then the gt and ignore boxes.
        gt_and_ignore_bboxes: (G + I, 4) the boxes ``gt_inds`` index.
        assign_result: from ``MultiInstanceAssigner``: ``gt_inds`` (N + G + I, k) 0-based,
            ``labels`` (N + G + I, k) (1 positive, 0 negative, -1 ignore). Not modified (MMDetection
            adds 1 to its ``gt_inds`` in place).
        gt_flags: (N + G + I,) uint8, 1 for the appended gt / ignore boxes.
        avg_factor_with_neg: as :class:`SamplingResult`.

    Fields added to :class:`SamplingResult`'s: ``neg_assigned_gt_inds`` (Q, k), ``neg_gt_labels`` (Q, k),
    ``neg_gt_bboxes`` (Q, k, 4); and ``pos_assigned_gt_inds`` / ``pos_gt_labels`` are (P, k),
    ``pos_gt_bboxes`` (P, k, 4).
    """

    def __init__(self, pos_inds: Tensor, neg_inds: Tensor, priors: Tensor, gt_and_ignore_bboxes: Tensor,
                 assign_result: AssignResult, gt_flags: Tensor, avg_factor_with_neg: bool = True) -> None:
        k = assign_result.gt_inds.size(1)
        boxes = gt_and_ignore_bboxes.reshape(-1, 4)
        self.neg_assigned_gt_inds = assign_result.gt_inds[neg_inds]
        self.neg_gt_labels = assign_result.labels[neg_inds]
        # The base class reads 1-based gt_inds (0 = background): pass a shifted copy.
        shifted = AssignResult(assign_result.num_gts, assign_result.gt_inds + 1, assign_result.max_overlaps,
                               assign_result.labels)
        super().__init__(pos_inds=pos_inds, neg_inds=neg_inds, priors=priors, gt_bboxes=boxes,
                         assign_result=shifted, gt_flags=gt_flags, avg_factor_with_neg=avg_factor_with_neg)
        if boxes.numel() == 0:
            # No gt or ignore boxes (the assigner made every entry background): zero boxes, never regressed.
            self.neg_gt_bboxes = boxes.new_zeros((neg_inds.numel(), k, 4))
            self.pos_gt_bboxes = boxes.new_zeros((pos_inds.numel(), k, 4))
        else:
            self.neg_gt_bboxes = boxes[self.neg_assigned_gt_inds]
