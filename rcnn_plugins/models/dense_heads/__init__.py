"""Dense (per-location) heads: the anchor-head and anchor-free bases, the RPN and FCOS heads."""
from .anchor_free_head import AnchorFreeHead
from .anchor_head import AnchorHead
from .fcos_head import FCOSHead
from .rpn_head import RPNHead

__all__ = ['AnchorFreeHead', 'AnchorHead', 'FCOSHead', 'RPNHead']
