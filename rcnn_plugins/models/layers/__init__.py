"""Layers: NMS helpers, RoI feature ops (``RoIAlign``, ``RoIPool``, ``CropAndResize`` registered in
``MODELS``), ``FrozenBatchNorm2d``, ``fuse_conv_bn`` (BN folded into convolutions for inference) and the
deformable conv layers ``DCN`` / ``DCNv2`` (mmcv's names, found by ``mmcv.cnn.build_conv_layer``)."""
from .crop_and_resize import CropAndResize
from .deform_conv import DeformConv2dPack
from .frozen_bn import FrozenBatchNorm2d
from .fuse_conv_bn import fuse_conv_bn
from .modulated_deform_conv import ModulatedDeformConv2dPack
from .nms import batched_nms, multiclass_nms
from .roi_ops import RoIAlign, RoIPool

__all__ = ['FrozenBatchNorm2d', 'fuse_conv_bn', 'batched_nms', 'multiclass_nms', 'RoIAlign', 'RoIPool',
           'CropAndResize', 'DeformConv2dPack', 'ModulatedDeformConv2dPack']
