"""``MultiInstanceAssigner``: CrowdDet's assigner; each proposal gets its ``num_instance`` best gts.

CrowdDet ("Detection in Crowded Scenes: One Proposal, Multiple Predictions", Chu et al. 2020) lets one
proposal predict several overlapping people. The assigner therefore gives every proposal its top-k
ground truths by IoU instead of the single best one, with MMDetection 3.3's rules and output layout
(which differ from :class:`MaxIoUAssigner`'s, see :meth:`MultiInstanceAssigner.assign`).
"""
from typing import Optional

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from .assign_result import AssignResult
from .max_iou_assigner import MaxIoUAssigner


def _top_k(overlaps: Tensor, k: int):
    """Per row the ``k`` largest values of ``overlaps`` (M, G) and their column indices, both (M, k).

    A stable descending sort, so ties keep the lower gt index first. With fewer than ``k`` columns the
    missing ones are padded with overlap 0 and gt index 0 (background entries; MMDetection reshapes a
    too-narrow matrix into wrong rows there).
    """
    values, inds = overlaps.sort(dim=1, descending=True, stable=True)
    values, inds = values[:, :k], inds[:, :k]
    missing = k - values.size(1)
    if missing > 0:
        values = torch.cat([values, values.new_zeros(values.size(0), missing)], dim=1)
        inds = torch.cat([inds, inds.new_zeros(inds.size(0), missing)], dim=1)
    return values, inds


@TASK_UTILS.register_module()
class MultiInstanceAssigner(MaxIoUAssigner):
    """Assign each proposal its ``num_instance`` highest-overlap gts (CrowdDet).

    Args:
        num_instance: gts assigned per proposal (predictions per proposal of the box head), 2.
        **kwargs: :class:`MaxIoUAssigner` arguments; ``pos_iou_thr``, ``neg_iou_thr`` and
            ``gpu_assign_thr`` are used (as in MMDetection, ``min_pos_iou``, ``match_low_quality`` and
            ``ignore_iof_thr`` are accepted and have no effect: ignore regions always count, by IoF).
    """

    def __init__(self, num_instance: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_instance < 1:
            raise ValueError(f'MultiInstanceAssigner: num_instance must be >= 1, got {num_instance}')
        self.num_instance = num_instance

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign ``pred_instances.priors`` (N, 4) plus the gt and ignore boxes themselves.

        As MMDetection: the candidates are the N priors followed by the G gts and the I ignore boxes
        (``MultiInsRandomSampler`` appends the same boxes to its priors), and the targets are the G gts
        (labels + 1, so 1 is the first class) followed by the I ignore boxes (label -1 unless
        ``gt_instances_ignore`` carries labels). Per candidate, the k best normal targets by IoU and
        the k best ignore targets by IoF (intersection over the candidate's area) are paired rank by
        rank; an ignore target replaces the normal one of the same rank when the normal IoU is below
        ``pos_iou_thr`` and the IoF beats it. Then label 1 where overlap >= ``pos_iou_thr`` and the
        target is not an ignore box, label 0 where overlap < ``neg_iou_thr``; other entries keep the
        target's label (-1 for ignore boxes).

        Returns:
            AssignResult over the N + G + I candidates with 2-D fields (N + G + I, k): ``gt_inds``
            0-based indices into cat(gts, ignores) (not the 1-based convention of other assigners),
            ``max_overlaps``, ``labels`` (1 positive, 0 negative, else as above); ``num_gts`` = G + I.
        """
        priors = pred_instances.priors[:, :4]
        gt_bboxes = gt_instances.bboxes
        gt_labels = gt_instances.labels.long() + 1
        if gt_instances_ignore is not None and gt_instances_ignore.bboxes.numel() > 0:
            ignore_bboxes = gt_instances_ignore.bboxes.to(gt_bboxes.dtype)
            ignore_labels = (gt_instances_ignore.labels.long() if 'labels' in gt_instances_ignore
                             else gt_labels.new_full((ignore_bboxes.size(0),), -1))
        else:
            ignore_bboxes = gt_bboxes.new_zeros((0, 4))
            ignore_labels = gt_labels.new_zeros((0,))

        device = priors.device
        if self.gpu_assign_thr > 0 and gt_bboxes.size(0) > self.gpu_assign_thr:
            # Many gts: the (N, G) matrices are built on the CPU to save device memory.
            priors, gt_bboxes, gt_labels = priors.cpu(), gt_bboxes.cpu(), gt_labels.cpu()
            ignore_bboxes, ignore_labels = ignore_bboxes.cpu(), ignore_labels.cpu()

        all_bboxes = torch.cat([gt_bboxes.to(priors.dtype), ignore_bboxes.to(priors.dtype)])
        all_labels = torch.cat([gt_labels, ignore_labels.to(gt_labels.dtype)])
        candidates = torch.cat([priors, all_bboxes])  # (M, 4), M = N + G + I
        k = self.num_instance
        if all_bboxes.size(0) == 0:
            # Nothing to match: every candidate is background for all k instances.
            zeros = candidates.new_zeros((candidates.size(0), k))
            return AssignResult(0, zeros.long().to(device), zeros.to(device), zeros.long().to(device))

        is_ignore = all_labels.eq(-1)[None, :]  # (1, G + I)
        iou = self.iou_calculator(candidates, all_bboxes, mode='iou')
        iof = self.iou_calculator(candidates, all_bboxes, mode='iof')
        normal, normal_inds = _top_k(torch.where(is_ignore, 0., iou), k)
        ignore, ignore_inds = _top_k(torch.where(is_ignore, iof, 0.), k)

        use_ignore = (normal < self.pos_iou_thr) & (ignore > normal)
        overlaps = torch.where(use_ignore, ignore, normal)
        gt_inds = torch.where(use_ignore, ignore_inds, normal_inds)
        labels = all_labels[gt_inds]
        positive = (overlaps >= self.pos_iou_thr) & (labels != -1)
        negative = (overlaps < self.neg_iou_thr) & (overlaps >= 0)
        # MMDetection sets positives first, then negatives (the latter win if neg_iou_thr > pos_iou_thr).
        labels = torch.where(negative, 0, torch.where(positive, 1, labels))
        return AssignResult(all_bboxes.size(0), gt_inds.to(device), overlaps.to(device), labels.to(device))
