"""``LegacyAnchorGenerator``: MMDetection 1.x's anchors, for checkpoints trained with them.

1.x treated a box as an inclusive pixel range (width = x2 - x1 + 1), so a base anchor of size
``w`` spans ``w - 1`` pixel units around a centre at ``center_offset * (w - 1)``; the 1.x configs
use ``center_offset=0.5``. Everything else (grid shifts, valid flags, order) is
:class:`AnchorGenerator`'s. Pair it with ``LegacyDeltaXYWHBBoxCoder`` (``legacy_1.x`` configs).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from .anchor_generator import AnchorGenerator


@TASK_UTILS.register_module()
class LegacyAnchorGenerator(AnchorGenerator):
    """Arguments as :class:`AnchorGenerator`; only the base anchors differ (the "-1" convention)."""

    def gen_single_level_base_anchors(self, base_size: float, scales: Tensor, ratios: Tensor,
                                      center: Optional[Tuple[float, float]] = None) -> Tensor:
        """(A, 4) base anchors: corners at centre -+ (size - 1) / 2, centre at offset * (base_size - 1)."""
        w = h = base_size
        if center is None:
            x_center, y_center = self.center_offset * (w - 1), self.center_offset * (h - 1)
        else:
            x_center, y_center = center
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (w * w_ratios[:, None] * scales[None, :]).reshape(-1)
            hs = (h * h_ratios[:, None] * scales[None, :]).reshape(-1)
        else:
            ws = (w * scales[:, None] * w_ratios[None, :]).reshape(-1)
            hs = (h * scales[:, None] * h_ratios[None, :]).reshape(-1)
        return torch.stack([x_center - 0.5 * (ws - 1), y_center - 0.5 * (hs - 1),
                            x_center + 0.5 * (ws - 1), y_center + 0.5 * (hs - 1)], dim=-1)
