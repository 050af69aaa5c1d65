"""Visualization: ``DetLocalVisualizer`` (registered in ``VISUALIZERS``) and colour palettes."""
from .local_visualizer import DetLocalVisualizer
from ..datasets.palette import get_palette

__all__ = ['DetLocalVisualizer', 'get_palette']
