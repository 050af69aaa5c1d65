"""Dense (per-location) heads: the anchor-head and anchor-free bases, the RPN, FCOS and guided-anchoring RPN heads."""
from .anchor_free_head import AnchorFreeHead
from .anchor_head import AnchorHead
from .fcos_head import FCOSHead
from .ga_rpn_head import GARPNHead
from .guided_anchor_head import GuidedAnchorHead
from .rpn_head import RPNHead

__all__ = ['AnchorFreeHead', 'AnchorHead', 'FCOSHead', 'GARPNHead', 'GuidedAnchorHead', 'RPNHead']
