"""Test-time augmentation: merging the predictions of several views of one image."""
from .det_tta import DetTTAModel, flip_boxes

__all__ = ['DetTTAModel', 'flip_boxes']
