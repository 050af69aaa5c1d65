"""``IoUBalancedNegSampler`` (Libra R-CNN): negatives spread evenly over IoU, so hard negatives
(IoU near the threshold), rare under random sampling, are not drowned out by easy ones.

With more negatives than wanted (``num_expected``):

1. negatives split into a *floor* set and an *IoU-sampling* set at ``floor_thr``
   (``floor_thr > 0``: [0, floor_thr) vs >= floor_thr; ``floor_thr`` 0 or -1: IoU == 0 vs > 0);
2. ``int(num_expected * (1 - floor_fraction))`` come from the IoU set: the range
   [floor, max IoU of the image's priors) is cut into ``num_bins`` equal bins and each bin gives at
   most ``int(wanted / num_bins)`` at random, the shortfall filled at random from the rest of the
   IoU set (with ``num_bins`` 1, plain random);
3. the rest from the floor set at random; a shortfall from any other negative.

``floor_thr=-1`` behaves as MMDetection's does in training: its sampler sets ``floor_thr = 0``
during its first call, so every later call runs the ``floor_thr = 0`` rule; ours runs it from the
first call on (see docs/MMDET_DIFFERENCES.md).
"""
import torch
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from ...utils import MMDetArgumentError
from ..assigners.assign_result import AssignResult
from .random_sampler import RandomSampler
from .sampling_utils import random_per_group, random_subset, remaining


@TASK_UTILS.register_module()
class IoUBalancedNegSampler(RandomSampler):
    """IoU-balanced negative sampling.

    Args:
        num, pos_fraction, neg_pos_ub, add_gt_as_proposals, context: as :class:`RandomSampler`.
        floor_thr: IoU below which negatives are sampled at random (see above); -1: IoU-balance
            all negatives with IoU > 0.
        floor_fraction: fraction of the negatives drawn from the floor set.
        num_bins: IoU bins.
    """

    def __init__(self, num: int, pos_fraction: float, floor_thr: float = -1, floor_fraction: float = 0,
                 num_bins: int = 3, **kwargs) -> None:
        super().__init__(num, pos_fraction, **kwargs)
        if not (floor_thr >= 0 or floor_thr == -1) or not 0 <= floor_fraction <= 1 or num_bins < 1:
            raise MMDetArgumentError(f'IoUBalancedNegSampler: need floor_thr >= 0 or -1, 0 <= floor_fraction <= 1, '
                                     f'num_bins >= 1; got {floor_thr}, {floor_fraction}, {num_bins}')
        self.floor_thr = floor_thr
        self.floor_fraction = floor_fraction
        self.num_bins = num_bins

    def sample_via_interval(self, max_overlaps: Tensor, inds: Tensor, num_expected: int) -> Tensor:
        """At most ``num_expected`` of ``inds`` (K,), about evenly from ``num_bins`` IoU bins.

        Args:
            max_overlaps: (N,) best IoU of every prior (the bins span up to their maximum).
            inds: (K,) candidate indices into ``max_overlaps``.
        """
        floor = max(self.floor_thr, 0)
        max_iou = max_overlaps.max().double()
        interval = (max_iou - floor) / self.num_bins
        edges = floor + torch.arange(self.num_bins + 1, device=inds.device, dtype=torch.float64) * interval
        # Bin i is [edges[i], edges[i+1]); the maximum itself and anything outside lie in no bin.
        bins = torch.searchsorted(edges, max_overlaps[inds].double().contiguous(), right=True) - 1
        in_bin = (bins >= 0) & (bins < self.num_bins)
        sampled = random_per_group(inds[in_bin], bins[in_bin], int(num_expected / self.num_bins))
        if sampled.numel() < num_expected:
            extra = random_subset(remaining(inds, sampled, max_overlaps.numel()), num_expected - sampled.numel())
            sampled = torch.cat([sampled, extra])
        return sampled

    def _sample_neg(self, assign_result: AssignResult, num_expected: int, priors: Tensor = None,
                    **kwargs) -> Tensor:
        """Sorted indices of at most ``num_expected`` negatives (gt_inds == 0)."""
        neg_inds = torch.nonzero(assign_result.gt_inds == 0).reshape(-1)
        if neg_inds.numel() <= num_expected:
            return neg_inds
        max_overlaps = assign_result.max_overlaps
        ious = max_overlaps[neg_inds]
        if self.floor_thr > 0:
            in_floor, in_iou = (ious >= 0) & (ious < self.floor_thr), ious >= self.floor_thr
        else:
            in_floor, in_iou = ious == 0, ious > 0
        floor_inds, iou_inds = neg_inds[in_floor], neg_inds[in_iou]

        num_iou = int(num_expected * (1 - self.floor_fraction))
        if iou_inds.numel() > num_iou:
            iou_sampled = (self.sample_via_interval(max_overlaps, iou_inds, num_iou) if self.num_bins >= 2
                           else random_subset(iou_inds, num_iou))
        else:
            iou_sampled = iou_inds
        floor_sampled = random_subset(floor_inds, num_expected - iou_sampled.numel())
        sampled = torch.cat([floor_sampled, iou_sampled])
        if sampled.numel() < num_expected:
            extra = random_subset(remaining(neg_inds, sampled, max_overlaps.numel()), num_expected - sampled.numel())
            sampled = torch.cat([sampled, extra])
        return sampled.sort().values

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] + f', floor_thr={self.floor_thr}, floor_fraction={self.floor_fraction}, '
                f'num_bins={self.num_bins})')
