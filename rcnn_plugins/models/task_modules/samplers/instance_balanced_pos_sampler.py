"""``InstanceBalancedPosSampler`` (Libra R-CNN): positives spread evenly over the gt instances.

With more positives than wanted, each gt instance keeps at most ``round(num_expected / G) + 1``
of its positives (G = gts that have positives), drawn at random; a shortfall is filled at random
from the other positives, an excess cut at random (MMDetection's rule). Negatives are sampled at
random as in ``RandomSampler``.
"""
import torch
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from ..assigners.assign_result import AssignResult
from .random_sampler import RandomSampler
from .sampling_utils import random_per_group, random_subset, remaining


@TASK_UTILS.register_module()
class InstanceBalancedPosSampler(RandomSampler):
    """Arguments as :class:`RandomSampler` (``num``, ``pos_fraction``, ``neg_pos_ub``,
    ``add_gt_as_proposals``, ``context``)."""

    def _sample_pos(self, assign_result: AssignResult, num_expected: int, priors: Tensor = None,
                    **kwargs) -> Tensor:
        """Sorted indices of at most ``num_expected`` positives, balanced over their gts."""
        gt_inds = assign_result.gt_inds
        pos_inds = torch.nonzero(gt_inds > 0).reshape(-1)
        if pos_inds.numel() <= num_expected:
            return pos_inds
        pos_gts = gt_inds[pos_inds]
        num_gts = torch.unique(pos_gts).numel()
        num_per_gt = int(round(num_expected / float(num_gts)) + 1)  # Python's round, as MMDetection
        sampled = random_per_group(pos_inds, pos_gts, num_per_gt)
        if sampled.numel() < num_expected:
            extra = random_subset(remaining(pos_inds, sampled, gt_inds.numel()), num_expected - sampled.numel())
            sampled = torch.cat([sampled, extra])
        elif sampled.numel() > num_expected:
            sampled = random_subset(sampled, num_expected)
        return sampled.sort().values
