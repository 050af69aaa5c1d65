"""Dense (per-location) heads: the anchor-head base and the RPN head."""
from .anchor_head import AnchorHead
from .rpn_head import RPNHead

__all__ = ['AnchorHead', 'RPNHead']
