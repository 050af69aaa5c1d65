"""``MaxIoUAssigner``: assign each prior to the ground truth it overlaps most, by IoU thresholds.

Used by both stages of Faster R-CNN (anchors in the RPN, proposals in the RoI head). The rules and
their order are MMDetection 3.x's; the low-quality matching step, a per-gt loop there, is
vectorised here with the same result (later gts win ties, as the loop's overwrites do).
"""
from numbers import Number
from typing import Optional, Sequence, Union

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS, build_or_use
from .assign_result import AssignResult


def perm_repeat_bboxes(bboxes: Tensor, perm_repeat_cfg: dict, max_iter: int = 5) -> Tensor:
    """Copies of ``bboxes`` (G, 4) in which gts repeated exactly are jittered apart.

    Two identical gt boxes have identical IoU with every prior, so the max-IoU rule can never give
    the second one a prior (V3Det has such duplicates with different labels). Each repeated box
    (every copy, as MMDetection) has its 4 coordinates multiplied by U(1 - r, 1 + r) factors; a
    group of copies is redrawn, with r shrinking as MMDetection's retries do (r, r, r - 0.001,
    r - 0.003, ... floored at 0.001), until every copy keeps a positive size and IoU >=
    ``iou_thr`` with the original, for at most ``max_iter`` retries. Vectorised: all groups are drawn
    at once, only the failed groups redrawn.

    Args:
        perm_repeat_cfg: ``iou_thr`` (0.97), ``perm_range`` (0.01).
    """
    from rcnn_plugins.structures import bbox_overlaps  # aligned IoU
    iou_thr = perm_repeat_cfg.get('iou_thr', 0.97)
    perm_range = perm_repeat_cfg.get('perm_range', 0.01)
    if bboxes.size(0) < 2:
        return bboxes.clone()
    _, group, counts = torch.unique(bboxes, dim=0, return_inverse=True, return_counts=True)
    repeated = counts[group] > 1  # (G,) rows that have a twin
    out = bboxes.clone()
    todo = repeated
    for counter in range(max_iter + 1):
        if counter >= 2:
            perm_range = max(perm_range - (counter - 1) * 0.001, 1e-3)
        factor = torch.empty_like(bboxes).uniform_(1 - perm_range, 1 + perm_range)
        out = torch.where(todo[:, None], bboxes * factor, out)
        ok = ((out[:, 2:] - out[:, :2]) > 0).all(1) & (bbox_overlaps(bboxes, out, is_aligned=True) >= iou_thr)
        # A group is redrawn as a whole when any of its copies fails.
        group_bad = torch.zeros_like(counts, dtype=torch.bool).index_put_((group,), ~ok & todo, accumulate=True)
        todo = group_bad[group] & repeated
        if not bool(todo.any()):
            break
    return out


@TASK_UTILS.register_module()
class MaxIoUAssigner:
    """Assign each prior a gt index: -1 ignore, 0 negative, k + 1 positive for gt k.

    Steps, on the (G, N) IoU matrix between gts and priors:

    1. every prior starts ignored (-1);
    2. priors whose IoF with an ignore region exceeds ``ignore_iof_thr`` get IoU -1 with every gt,
       so steps 3-4 leave them ignored (step 5 can still claim them, only if ``min_pos_iou <= -1``);
    3. priors whose max IoU is in [0, neg_iou_thr) (or in [lo, hi) for a pair) become negative;
    4. priors whose max IoU >= ``pos_iou_thr`` are assigned to their best gt;
    5. if ``match_low_quality``: each gt whose best IoU >= ``min_pos_iou`` claims the prior(s)
       with that best IoU (all of them if ``gt_max_assign_all``), so no gt is left unmatched.
       As in MMDetection, with ``min_pos_iou=0`` a gt overlapping no prior claims every prior
       at IoU 0; the RPN config uses 0.3.

    Args:
        pos_iou_thr: IoU at or above which a prior is positive.
        neg_iou_thr: IoU below which a prior is negative, or a (lo, hi) range.
        min_pos_iou: minimum IoU for a low-quality match (step 5).
        gt_max_assign_all: in step 5, give the gt every prior tied at its best IoU, not just one.
        ignore_iof_thr: IoF above which a prior counts as inside an ignore region; <= 0 disables.
        ignore_wrt_candidates: IoF relative to the prior's area (True) or the ignore box's (False).
        match_low_quality: enable step 5 (on for the RPN, off for the RoI head).
        gpu_assign_thr: if > 0 and there are more gts than this, assign on the CPU to save
            device memory (the (G, N) matrix), then move the result back.
        iou_calculator: config of the IoU calculator in ``TASK_UTILS``.
        perm_repeat_gt_cfg: if given (``dict(iou_thr=..., perm_range=...)``), gts repeated exactly
            are jittered apart before the IoUs are computed (:func:`perm_repeat_bboxes`), so each
            copy can win priors; targets still use the original boxes.
    """

    def __init__(self,
                 pos_iou_thr: float,
                 neg_iou_thr: Union[float, Sequence[float]],
                 min_pos_iou: float = .0,
                 gt_max_assign_all: bool = True,
                 ignore_iof_thr: float = -1,
                 ignore_wrt_candidates: bool = True,
                 match_low_quality: bool = True,
                 gpu_assign_thr: float = -1,
                 iou_calculator: dict = dict(type='BboxOverlaps2D'),
                 perm_repeat_gt_cfg: Optional[dict] = None) -> None:
        if isinstance(neg_iou_thr, Number):
            neg_range = (None, float(neg_iou_thr))
        elif isinstance(neg_iou_thr, (tuple, list)) and len(neg_iou_thr) == 2:
            neg_range = (float(neg_iou_thr[0]), float(neg_iou_thr[1]))
        else:
            raise TypeError(f'MaxIoUAssigner: neg_iou_thr must be a number or a (lo, hi) pair, got {neg_iou_thr!r}')
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self._neg_range = neg_range
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.ignore_iof_thr = ignore_iof_thr
        self.ignore_wrt_candidates = ignore_wrt_candidates
        self.match_low_quality = match_low_quality
        self.gpu_assign_thr = gpu_assign_thr
        self.iou_calculator = build_or_use(TASK_UTILS, iou_calculator)
        self.perm_repeat_gt_cfg = perm_repeat_gt_cfg

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign ``pred_instances.priors`` (N, 4) to ``gt_instances`` (bboxes (G, 4), labels (G,)).

        ``gt_instances_ignore.bboxes`` (I, 4), if given, are regions whose priors are ignored.
        """
        priors = pred_instances.priors
        gt_bboxes = gt_instances.bboxes
        gt_labels = gt_instances.labels
        gt_ignore = None if gt_instances_ignore is None else gt_instances_ignore.bboxes

        device = priors.device
        on_cpu = self.gpu_assign_thr > 0 and gt_bboxes.shape[0] > self.gpu_assign_thr
        if on_cpu:
            priors, gt_bboxes, gt_labels = priors.cpu(), gt_bboxes.cpu(), gt_labels.cpu()
            gt_ignore = None if gt_ignore is None else gt_ignore.cpu()

        gt_for_iou = gt_bboxes
        if self.perm_repeat_gt_cfg is not None and priors.numel() > 0:
            gt_for_iou = perm_repeat_bboxes(gt_bboxes, self.perm_repeat_gt_cfg)
        overlaps = self.iou_calculator(gt_for_iou, priors)  # (G, N)
        if (self.ignore_iof_thr > 0 and gt_ignore is not None and gt_ignore.numel() > 0
                and priors.numel() > 0):
            if self.ignore_wrt_candidates:
                ignore_max = self.iou_calculator(priors, gt_ignore, mode='iof').max(dim=1).values
            else:
                ignore_max = self.iou_calculator(gt_ignore, priors, mode='iof').max(dim=0).values
            overlaps.masked_fill_((ignore_max > self.ignore_iof_thr)[None, :], -1)

        result = self.assign_wrt_overlaps(overlaps, gt_labels)
        if on_cpu:
            result.gt_inds = result.gt_inds.to(device)
            result.max_overlaps = result.max_overlaps.to(device)
            result.labels = result.labels.to(device)
        return result

    def assign_wrt_overlaps(self, overlaps: Tensor, gt_labels: Tensor) -> AssignResult:
        """Assign from a precomputed (G, N) overlap matrix and (G,) gt labels."""
        num_gts, num_priors = overlaps.shape
        if num_gts == 0 or num_priors == 0:
            # No gts: every prior is background. No priors: nothing to assign.
            gt_inds = overlaps.new_zeros((num_priors,), dtype=torch.long)
            return AssignResult(num_gts, gt_inds, overlaps.new_zeros((num_priors,)),
                                overlaps.new_full((num_priors,), -1, dtype=torch.long))

        max_overlaps, argmax_overlaps = overlaps.max(dim=0)  # per prior, (N,)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)  # per gt, (G,)

        gt_inds = overlaps.new_full((num_priors,), -1, dtype=torch.long)
        lo, hi = self._neg_range
        # A float threshold leaves priors marked -1 by an ignore region (IoU -1) ignored.
        negative = (max_overlaps >= (0 if lo is None else lo)) & (max_overlaps < hi)
        gt_inds.masked_fill_(negative, 0)
        positive = max_overlaps >= self.pos_iou_thr
        gt_inds = torch.where(positive, argmax_overlaps + 1, gt_inds)

        if self.match_low_quality:
            # Only gts whose best IoU reaches min_pos_iou take part; 0 marks the others.
            gt_ids = torch.where(gt_max_overlaps >= self.min_pos_iou,
                                 torch.arange(1, num_gts + 1, device=overlaps.device), 0)
            if self.gt_max_assign_all:
                # MMDetection loops over gts and lets each overwrite the priors at its best IoU,
                # so the last (largest) such gt wins: a max over gt ids where the IoU is the gt's
                # best. A small integer dtype keeps this (G, N) pass cheap.
                small = torch.uint8 if num_gts < 256 else torch.int16 if num_gts < 32768 else torch.int32
                is_best = overlaps == gt_max_overlaps[:, None]  # (G, N) bool
                winner = (is_best * gt_ids.to(small)[:, None]).amax(dim=0).long()  # (N,), 0 = none
            else:
                # One prior per gt; when gts pick the same prior the largest index wins, as in the loop.
                winner = torch.zeros_like(gt_inds).scatter_reduce_(0, gt_argmax_overlaps, gt_ids, reduce='amax')
            gt_inds = torch.where(winner > 0, winner, gt_inds)

        labels = torch.where(gt_inds > 0, gt_labels[(gt_inds - 1).clamp(min=0)].long(), -1)
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(pos_iou_thr={self.pos_iou_thr}, neg_iou_thr={self.neg_iou_thr}, '
                f'min_pos_iou={self.min_pos_iou}, gt_max_assign_all={self.gt_max_assign_all}, '
                f'ignore_iof_thr={self.ignore_iof_thr}, ignore_wrt_candidates={self.ignore_wrt_candidates}, '
                f'match_low_quality={self.match_low_quality}, gpu_assign_thr={self.gpu_assign_thr})')
