"""Prior (anchor) generators, registered in ``TASK_UTILS``."""
from .anchor_generator import AnchorGenerator

__all__ = ['AnchorGenerator']
