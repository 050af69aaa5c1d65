"""The contracts of this folder: what an assigner and an IoU calculator must offer.

A class registered in ``TASK_UTILS`` from this folder satisfies one of them; the registry test
(``tests/models/test_protocols.py``) checks every such class, so a new assigner is checked the
day it is registered.
"""
from typing import Optional, Protocol, runtime_checkable

from mmengine.structures import InstanceData
from torch import Tensor

from .assign_result import AssignResult


@runtime_checkable
class Assigner(Protocol):
    """Decides, per prior of one image, which ground-truth box (if any) it should predict."""

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """``pred_instances.priors`` (N, 4) against ``gt_instances.bboxes`` (G, 4) / ``labels`` (G,).

        Returns an :class:`AssignResult` with ``gt_inds`` (N,): 0 negative, -1 ignored,
        k > 0 matched to gt k - 1; ``max_overlaps`` (N,); ``labels`` (N,) (-1 where unmatched).
        """


@runtime_checkable
class IoUCalculator(Protocol):
    """Pairwise overlaps of two box sets (``iou_calculator=`` of the assigners)."""

    def __call__(self, bboxes1: Tensor, bboxes2: Tensor, mode: str = 'iou', is_aligned: bool = False) -> Tensor:
        """(M, 4), (N, 4) -> (M, N) overlaps, or (M,) when ``is_aligned``."""
