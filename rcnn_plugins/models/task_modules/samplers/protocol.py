"""The contract of this folder: what a sampler must offer (checked for every registered sampler)."""
from typing import Protocol, runtime_checkable

from mmengine.structures import InstanceData

from ..assigners.assign_result import AssignResult
from .sampling_result import SamplingResult


@runtime_checkable
class Sampler(Protocol):
    """Picks the positive and negative priors of one image that the loss is computed on.

    Constructors accept ``context=None`` (the RoI head that builds the sampler passes itself, as
    MMDetection's do, for samplers that run its branches, e.g. OHEM).
    """

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData, gt_instances: InstanceData,
               **kwargs) -> SamplingResult:
        """``pred_instances.priors`` (N, 4) with their assignment -> :class:`SamplingResult`
        (``pos_inds``, ``neg_inds``, ``pos_priors`` (P, 4), ``pos_gt_bboxes`` (P, 4), ...)."""
