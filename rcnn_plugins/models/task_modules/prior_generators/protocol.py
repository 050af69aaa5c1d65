"""The contract of this folder: what a prior (anchor / point) generator must offer."""
from typing import List, Protocol, Sequence, Tuple, runtime_checkable

from torch import Tensor


@runtime_checkable
class PriorGenerator(Protocol):
    """Priors on every feature-map location; ``num_levels`` and ``num_base_priors`` (per level)
    are attributes or properties."""

    def grid_priors(self, featmap_sizes: Sequence[Tuple[int, int]], **kwargs) -> List[Tensor]:
        """Per level (H_l * W_l * A_l, 4) priors in input-image pixels (``dtype``, ``device`` kwargs)."""

    def valid_flags(self, featmap_sizes: Sequence[Tuple[int, int]], pad_shape: Sequence[int], **kwargs) -> List[Tensor]:
        """Per level (H_l * W_l * A_l,) bool: the prior's location lies inside the padded image."""
