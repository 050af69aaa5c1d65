"""Layers: NMS helpers, RoI feature ops (``RoIAlign``, ``RoIPool``, ``CropAndResize`` registered in
``MODELS``), ``FrozenBatchNorm2d``, ``NormedLinear`` (cosine classifier) and ``fuse_conv_bn`` (BN folded
into convolutions for inference)."""
from .crop_and_resize import CropAndResize
from .frozen_bn import FrozenBatchNorm2d
from .fuse_conv_bn import fuse_conv_bn
from .nms import batched_nms, multiclass_nms
from .normed_linear import NormedLinear
from .roi_ops import RoIAlign, RoIPool

__all__ = ['FrozenBatchNorm2d', 'fuse_conv_bn', 'batched_nms', 'multiclass_nms', 'RoIAlign', 'RoIPool',
           'CropAndResize', 'NormedLinear']
