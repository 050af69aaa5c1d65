"""Layers: NMS helpers, RoI feature ops (``RoIAlign``, ``RoIPool``, ``CropAndResize`` registered in
``MODELS``), the CARAFE upsampler (``CARAFEPack``), ``FrozenBatchNorm2d``, ``NormedLinear`` (cosine classifier)
and ``fuse_conv_bn`` (BN folded into convolutions for inference)."""
from .carafe import CARAFEPack
from .crop_and_resize import CropAndResize
from .frozen_bn import FrozenBatchNorm2d
from .fuse_conv_bn import fuse_conv_bn
from .nms import batched_nms, check_nms_cfg, multiclass_nms
from .normed_linear import NormedLinear
from .roi_ops import RoIAlign, RoIPool
from .soft_nms import batched_soft_nms, nms_match, soft_nms

__all__ = ['FrozenBatchNorm2d', 'fuse_conv_bn', 'batched_nms', 'multiclass_nms', 'check_nms_cfg', 'soft_nms',
           'batched_soft_nms', 'nms_match', 'RoIAlign', 'RoIPool', 'CropAndResize', 'CARAFEPack', 'NormedLinear']
