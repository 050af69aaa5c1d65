"""Layers: NMS helpers, RoI feature ops (``RoIAlign``, ``RoIPool``, ``CropAndResize`` registered in
``MODELS``) and ``FrozenBatchNorm2d``."""
from .crop_and_resize import CropAndResize
from .frozen_bn import FrozenBatchNorm2d
from .nms import batched_nms, multiclass_nms
from .roi_ops import RoIAlign, RoIPool

__all__ = ['FrozenBatchNorm2d', 'batched_nms', 'multiclass_nms', 'RoIAlign', 'RoIPool', 'CropAndResize']
