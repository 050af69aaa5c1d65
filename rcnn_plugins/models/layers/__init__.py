"""Layers: NMS helpers and RoI feature ops (``RoIAlign``, ``RoIPool`` registered in ``MODELS``)."""
from .nms import batched_nms, multiclass_nms
from .roi_ops import RoIAlign, RoIPool

__all__ = ['batched_nms', 'multiclass_nms', 'RoIAlign', 'RoIPool']
