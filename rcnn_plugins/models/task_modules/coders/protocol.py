"""The contract of this folder: what a box coder must offer (checked for every registered coder)."""
from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class BBoxCoder(Protocol):
    """Boxes <-> regression targets. ``encode_size`` is the width of an encoded box (4 for deltas)."""

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor) -> Tensor:
        """(N, 4) priors, (N, 4) gt boxes -> (N, encode_size) regression targets."""

    def decode(self, bboxes: Tensor, pred_bboxes: Tensor, **kwargs) -> Tensor:
        """(N, 4) priors, (N, encode_size) predictions -> (N, 4) xyxy boxes (``max_shape`` clips)."""
