"""Prior (anchor) generators, registered in ``TASK_UTILS``."""
from .anchor_generator import AnchorGenerator
from .legacy_anchor_generator import LegacyAnchorGenerator
from .point_generator import MlvlPointGenerator

__all__ = ['AnchorGenerator', 'LegacyAnchorGenerator', 'MlvlPointGenerator']
