"""Dense (per-location) heads: the anchor-head and anchor-free bases, the RPN, FCOS, guided-anchoring
and cascade RPN heads."""
from .anchor_free_head import AnchorFreeHead
from .anchor_head import AnchorHead
from .cascade_rpn_head import CascadeRPNHead
from .fcos_head import FCOSHead
from .ga_rpn_head import GARPNHead
from .guided_anchor_head import GuidedAnchorHead
from .rpn_head import RPNHead
from .stage_cascade_rpn_head import StageCascadeRPNHead

__all__ = ['AnchorFreeHead', 'AnchorHead', 'CascadeRPNHead', 'FCOSHead', 'GARPNHead', 'GuidedAnchorHead', 'RPNHead',
           'StageCascadeRPNHead']
