"""Visualization: ``DetLocalVisualizer`` (registered in ``VISUALIZERS``) and colour palettes."""
from ..datasets.palette import get_palette
from .local_visualizer import DetLocalVisualizer

__all__ = ['DetLocalVisualizer', 'get_palette']
