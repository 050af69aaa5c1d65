"""``RandomSampler``: a fixed-size random minibatch of positive and negative priors per image."""
import torch
from mmengine.structures import InstanceData
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from ..assigners.assign_result import AssignResult
from .sampling_result import SamplingResult


@TASK_UTILS.register_module()
class RandomSampler:
    """Sample up to ``num`` priors, at most ``num * pos_fraction`` of them positive.

    Missing positives are made up with negatives, so the batch is full whenever there are enough
    negatives.

    Args:
        num: total number of samples per image (256 in the RPN, 512 in the RoI head).
        pos_fraction: upper bound on the fraction of positives.
        neg_pos_ub: if >= 0, at most ``neg_pos_ub * max(1, num_pos)`` negatives.
        add_gt_as_proposals: prepend the gt boxes to the priors as positives (RoI head).
        context: the RoI head that builds the sampler; ``StandardRoIHead`` passes itself to every
            sampler, as MMDetection does, for samplers that run its box branch (``OHEMSampler``).
            Random sampling does not use it.
    """

    def __init__(self, num: int, pos_fraction: float, neg_pos_ub: float = -1,
                 add_gt_as_proposals: bool = True, context=None) -> None:
        if num <= 0 or not 0 <= pos_fraction <= 1:
            raise ValueError(f'RandomSampler: need num > 0 and 0 <= pos_fraction <= 1, '
                             f'got num={num}, pos_fraction={pos_fraction}')
        self.num = num
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub
        self.add_gt_as_proposals = add_gt_as_proposals

    @staticmethod
    def random_choice(gallery: Tensor, num: int) -> Tensor:
        """``num`` distinct random elements of the 1-D ``gallery`` (on its device)."""
        perm = torch.randperm(gallery.numel(), device=gallery.device)[:num]
        return gallery[perm]

    def _sample(self, candidates: Tensor, num_expected: int) -> Tensor:
        """All of ``candidates`` (a bool mask) if few enough, else a random subset, sorted."""
        inds = torch.nonzero(candidates).reshape(-1)
        if inds.numel() > num_expected:
            # Sorted, as MMDetection's unique() leaves them: the targets' order then matches.
            inds = self.random_choice(inds, num_expected).sort().values
        return inds

    def _sample_pos(self, assign_result: AssignResult, num_expected: int, priors: Tensor, **kwargs) -> Tensor:
        """Sorted indices of at most ``num_expected`` positive priors."""
        return self._sample(assign_result.gt_inds > 0, num_expected)

    def _sample_neg(self, assign_result: AssignResult, num_expected: int, priors: Tensor, **kwargs) -> Tensor:
        """Sorted indices of at most ``num_expected`` negative priors."""
        return self._sample(assign_result.gt_inds == 0, num_expected)

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData, gt_instances: InstanceData,
               **kwargs) -> SamplingResult:
        """Sample priors of one image.

        Args:
            assign_result: assignment of ``pred_instances.priors``; modified in place (``add_gt_``)
                when gts are added as proposals.
            pred_instances: ``priors`` (N, 4).
            gt_instances: ``bboxes`` (G, 4), ``labels`` (G,).
            **kwargs: given to ``_sample_pos`` / ``_sample_neg`` (the RoI head passes ``feats``,
                the image's feature maps, for ``OHEMSampler``).
        """
        priors = pred_instances.priors
        gt_bboxes = gt_instances.bboxes
        gt_labels = gt_instances.labels
        if priors.dim() < 2:
            priors = priors[None, :]
        priors = priors[:, :4]  # proposals may carry a score column

        gt_flags = priors.new_zeros((priors.shape[0],), dtype=torch.uint8)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            priors = torch.cat([gt_bboxes.to(priors.dtype), priors], dim=0)
            assign_result.add_gt_(gt_labels)
            gt_flags = torch.cat([gt_flags.new_ones(gt_bboxes.shape[0]), gt_flags])

        num_expected_pos = int(self.num * self.pos_fraction)
        pos_inds = self._sample_pos(assign_result, num_expected_pos, priors, **kwargs)
        num_expected_neg = self.num - pos_inds.numel()
        if self.neg_pos_ub >= 0:
            num_expected_neg = min(num_expected_neg, int(self.neg_pos_ub * max(1, pos_inds.numel())))
        neg_inds = self._sample_neg(assign_result, num_expected_neg, priors, **kwargs)

        return SamplingResult(pos_inds=pos_inds, neg_inds=neg_inds, priors=priors, gt_bboxes=gt_bboxes,
                              assign_result=assign_result, gt_flags=gt_flags)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num={self.num}, pos_fraction={self.pos_fraction}, '
                f'neg_pos_ub={self.neg_pos_ub}, add_gt_as_proposals={self.add_gt_as_proposals})')
