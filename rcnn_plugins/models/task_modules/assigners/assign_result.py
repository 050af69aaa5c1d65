"""``AssignResult``: what an assigner decided for each prior (anchor or proposal)."""
from typing import Any, Dict

import torch
from torch import Tensor


class AssignResult:
    """Per-prior assignment to ground truths.

    Args:
        num_gts: number of ground-truth boxes G the priors were assigned against.
        gt_inds: (N,) long. 0 = negative (background), -1 = ignored, k + 1 = assigned to gt k.
        max_overlaps: (N,) float, each prior's best IoU with any gt (0 when there are no gts).
        labels: (N,) long, the class label of the assigned gt; -1 where the prior is not positive.
    """

    def __init__(self, num_gts: int, gt_inds: Tensor, max_overlaps: Tensor, labels: Tensor) -> None:
        self.num_gts = num_gts
        self.gt_inds = gt_inds
        self.max_overlaps = max_overlaps
        self.labels = labels
        self._extra_properties: Dict[str, Any] = {}

    @property
    def num_preds(self) -> int:
        """Number of priors N."""
        return len(self.gt_inds)

    def set_extra_property(self, key: str, value: Any) -> None:
        """Attach extra per-assignment information (MMDetection API)."""
        self._extra_properties[key] = value

    def get_extra_property(self, key: str) -> Any:
        return self._extra_properties.get(key, None)

    @property
    def info(self) -> Dict[str, Any]:
        """The fields as a dict (MMDetection API)."""
        info = dict(num_gts=self.num_gts, num_preds=self.num_preds, gt_inds=self.gt_inds,
                    max_overlaps=self.max_overlaps, labels=self.labels)
        info.update(self._extra_properties)
        return info

    def add_gt_(self, gt_labels: Tensor) -> None:
        """Prepend the G ground truths as priors assigned to themselves (IoU 1), in place.

        Used by samplers with ``add_gt_as_proposals`` so the RoI head always sees some
        perfectly placed positives.
        """
        self_inds = torch.arange(1, len(gt_labels) + 1, dtype=torch.long, device=gt_labels.device)
        self.gt_inds = torch.cat([self_inds, self.gt_inds])
        self.max_overlaps = torch.cat([self.max_overlaps.new_ones(len(gt_labels)), self.max_overlaps])
        self.labels = torch.cat([gt_labels.to(self.labels.dtype), self.labels])

    def __repr__(self) -> str:
        return (f'<{self.__class__.__name__}(num_gts={self.num_gts}, num_preds={self.num_preds}, '
                f'gt_inds.shape={tuple(self.gt_inds.shape)}, max_overlaps.shape={tuple(self.max_overlaps.shape)}, '
                f'labels.shape={tuple(self.labels.shape)})>')
