"""``MultiInsRandomSampler``: ``RandomSampler`` for CrowdDet's k-targets-per-RoI assignments."""
import torch
from mmengine.structures import InstanceData
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from ..assigners.assign_result import AssignResult
from .multi_instance_sampling_result import MultiInstanceSamplingResult
from .random_sampler import RandomSampler


@TASK_UTILS.register_module()
class MultiInsRandomSampler(RandomSampler):
    """Random positives / negatives by the first (best) instance of each RoI's assignment.

    A RoI is positive when its best target is a person (``labels[:, 0] > 0``), negative when it is
    background (``== 0``); RoIs whose best target is an ignore box (-1) are not sampled. As in
    MMDetection, the gt and ignore boxes are always appended to the proposals (after them, matching
    the candidates of ``MultiInstanceAssigner``), whatever ``add_gt_as_proposals`` says.

    Args: as :class:`RandomSampler` (``num``, ``pos_fraction``, ``neg_pos_ub``, ``add_gt_as_proposals``).
    """

    def _sample_pos(self, assign_result: AssignResult, num_expected: int, priors: Tensor = None,
                    **kwargs) -> Tensor:
        """Sorted indices of at most ``num_expected`` RoIs whose best target is foreground."""
        return self._sample(assign_result.labels[:, 0] > 0, num_expected)

    def _sample_neg(self, assign_result: AssignResult, num_expected: int, priors: Tensor = None,
                    **kwargs) -> Tensor:
        """Sorted indices of at most ``num_expected`` RoIs whose best target is background."""
        return self._sample(assign_result.labels[:, 0] == 0, num_expected)

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData, gt_instances: InstanceData,
               **kwargs) -> MultiInstanceSamplingResult:
        """Sample the RoIs of one image.

        Args:
            assign_result: from ``MultiInstanceAssigner`` over the proposals + gt + ignore boxes.
            pred_instances: ``priors`` (N, 4 or 5) proposals.
            gt_instances: ``bboxes`` (G, 4).
            batch_gt_instances_ignore: (keyword) this image's ignore boxes, ``bboxes`` (I, 4); the
                same the assigner got. None or absent: no ignore boxes (MMDetection requires it).
        """
        gt_bboxes = gt_instances.bboxes
        ignore = kwargs.get('batch_gt_instances_ignore')
        ignore_bboxes = gt_bboxes.new_zeros((0, 4)) if ignore is None else ignore.bboxes.to(gt_bboxes.dtype)
        gt_and_ignore = torch.cat([gt_bboxes, ignore_bboxes])
        priors = pred_instances.priors
        if priors.dim() < 2:
            priors = priors[None, :]
        priors = torch.cat([priors[:, :4], gt_and_ignore.to(priors.dtype)])
        num_props = priors.size(0) - gt_and_ignore.size(0)
        if assign_result.labels.dim() != 2 or assign_result.labels.size(0) != priors.size(0):
            raise ValueError(f'MultiInsRandomSampler: the assignment covers {assign_result.labels.shape[0]} '
                             f'candidates, expected {priors.size(0)} (the {num_props} proposals + '
                             f'{gt_and_ignore.size(0)} gt/ignore boxes) with a column per instance; use '
                             'MultiInstanceAssigner and pass the same ignore boxes to both')
        gt_flags = torch.cat([priors.new_zeros((num_props,), dtype=torch.uint8),
                              priors.new_ones((gt_and_ignore.size(0),), dtype=torch.uint8)])

        pos_inds = self._sample_pos(assign_result, int(self.num * self.pos_fraction))
        num_expected_neg = self.num - pos_inds.numel()
        if self.neg_pos_ub >= 0:
            num_expected_neg = min(num_expected_neg, int(self.neg_pos_ub * max(1, pos_inds.numel())))
        neg_inds = self._sample_neg(assign_result, num_expected_neg)
        return MultiInstanceSamplingResult(pos_inds=pos_inds, neg_inds=neg_inds, priors=priors,
                                           gt_and_ignore_bboxes=gt_and_ignore, assign_result=assign_result,
                                           gt_flags=gt_flags)
