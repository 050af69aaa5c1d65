"""The contract of this folder: what a RoI feature extractor must offer."""
from typing import Protocol, Sequence, runtime_checkable

from torch import Tensor


@runtime_checkable
class RoIExtractor(Protocol):
    """Pools a fixed-size feature per RoI from a feature pyramid; ``num_inputs`` (property or
    attribute) is how many pyramid levels it reads."""

    def __call__(self, feats: Sequence[Tensor], rois: Tensor, *args, **kwargs) -> Tensor:
        """Per level (B, C, H_l, W_l), (R, 5) rois (batch index, x1, y1, x2, y2) -> (R, C, out, out)."""
