"""``CombinedSampler``: positives from one sampler, negatives from another (Libra R-CNN's
``InstanceBalancedPosSampler`` + ``IoUBalancedNegSampler``).

The shared arguments (``num``, ``pos_fraction``, ``neg_pos_ub``, ``add_gt_as_proposals``,
``context``) are given to both sub-samplers as defaults, as MMDetection does; this sampler keeps
the quota logic of :class:`RandomSampler` and asks ``pos_sampler._sample_pos`` and
``neg_sampler._sample_neg`` for the picks.
"""
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS, build_or_use
from ..assigners.assign_result import AssignResult
from .random_sampler import RandomSampler


@TASK_UTILS.register_module()
class CombinedSampler(RandomSampler):
    """Args:
        pos_sampler, neg_sampler: configs (or built samplers) with ``_sample_pos`` / ``_sample_neg``.
        num, pos_fraction, neg_pos_ub, add_gt_as_proposals, context: as :class:`RandomSampler`.
    """

    def __init__(self, pos_sampler, neg_sampler, num: int, pos_fraction: float, neg_pos_ub: float = -1,
                 add_gt_as_proposals: bool = True, context=None, **kwargs) -> None:
        super().__init__(num, pos_fraction, neg_pos_ub=neg_pos_ub, add_gt_as_proposals=add_gt_as_proposals)
        shared = dict(num=num, pos_fraction=pos_fraction, neg_pos_ub=neg_pos_ub,
                      add_gt_as_proposals=add_gt_as_proposals, context=context, **kwargs)
        self.pos_sampler = build_or_use(TASK_UTILS, pos_sampler, default_args=shared)
        self.neg_sampler = build_or_use(TASK_UTILS, neg_sampler, default_args=shared)
        for role, sampler in (('pos_sampler', self.pos_sampler), ('neg_sampler', self.neg_sampler)):
            if not callable(getattr(sampler, '_sample_pos' if role == 'pos_sampler' else '_sample_neg', None)):
                raise TypeError(f'CombinedSampler: {role} {type(sampler).__name__} has no '
                                f'{"_sample_pos" if role == "pos_sampler" else "_sample_neg"}(); use a '
                                'RandomSampler-based sampler')

    def _sample_pos(self, assign_result: AssignResult, num_expected: int, priors: Tensor, **kwargs) -> Tensor:
        return self.pos_sampler._sample_pos(assign_result, num_expected, priors, **kwargs)

    def _sample_neg(self, assign_result: AssignResult, num_expected: int, priors: Tensor, **kwargs) -> Tensor:
        return self.neg_sampler._sample_neg(assign_result, num_expected, priors, **kwargs)

    def __repr__(self) -> str:
        return (f'CombinedSampler(num={self.num}, pos_fraction={self.pos_fraction}, pos_sampler={self.pos_sampler!r}, '
                f'neg_sampler={self.neg_sampler!r})')
