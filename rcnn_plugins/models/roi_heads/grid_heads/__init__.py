"""Grid heads: box corners located as grid points on heatmaps (Grid R-CNN)."""
from .grid_head import GridHead

__all__ = ['GridHead']
