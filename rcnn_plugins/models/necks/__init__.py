"""Necks: modules that mix a backbone's multi-scale feature maps (e.g. a feature pyramid)."""
from .bfp import BFP
from .fpg import FPG
from .fpn import FPN
from .fpn_carafe import FPN_CARAFE
from .hrfpn import HRFPN
from .pafpn import PAFPN
from .rfp import RFP

__all__ = ['BFP', 'FPG', 'FPN', 'FPN_CARAFE', 'HRFPN', 'PAFPN', 'RFP']
