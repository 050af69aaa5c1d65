"""``PseudoSampler``: no sampling; every positive and every negative prior is used.

For losses that handle the foreground/background imbalance themselves (``FocalLoss``). The
result's ``avg_factor`` is the number of positives (``avg_factor_with_neg=False``), as in
MMDetection, so a dense head averages its losses over the positives.
"""
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.registry import TASK_UTILS
from ..assigners.assign_result import AssignResult
from .sampling_result import SamplingResult


@TASK_UTILS.register_module()
class PseudoSampler:
    """Return all positive (gt_inds > 0) and negative (gt_inds == 0) priors; ignored ones (-1) are left out.

    Accepts and ignores any constructor arguments (``context``, ``num``, ...), as MMDetection's.
    """

    def __init__(self, **kwargs) -> None:
        pass

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData, gt_instances: InstanceData,
               *args, **kwargs) -> SamplingResult:
        """``pred_instances.priors`` (N, 4) -> :class:`SamplingResult` over all of them (no gts added)."""
        priors = pred_instances.priors
        pos_inds = torch.nonzero(assign_result.gt_inds > 0).reshape(-1)
        neg_inds = torch.nonzero(assign_result.gt_inds == 0).reshape(-1)
        gt_flags = priors.new_zeros(priors.shape[0], dtype=torch.uint8)
        return SamplingResult(pos_inds=pos_inds, neg_inds=neg_inds, priors=priors, gt_bboxes=gt_instances.bboxes,
                              assign_result=assign_result, gt_flags=gt_flags, avg_factor_with_neg=False)

    def __repr__(self) -> str:
        return 'PseudoSampler()'
