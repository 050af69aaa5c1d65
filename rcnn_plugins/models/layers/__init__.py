"""Layers: NMS helpers (``nms``, ``soft_nms``, ``nms_match``, CrowdDet's ``set_nms``), RoI feature ops (``RoIAlign``,
``RoIPool``, ``CropAndResize``, ``DeformRoIPool`` / ``DeformRoIPoolPack`` /
``ModulatedDeformRoIPoolPack`` registered in ``MODELS``), the deformable conv layers ``DCN`` /
``DCNv2`` (mmcv's names, found by ``mmcv.cnn.build_conv_layer``), the CARAFE upsampler
(``CARAFEPack``), ``FrozenBatchNorm2d``, ``NormedLinear`` (cosine classifier), ``TridentConv`` (one
weight at several dilations) and ``fuse_conv_bn`` (BN folded into convolutions for inference)."""
from .carafe import CARAFEPack
from .crop_and_resize import CropAndResize
from .deform_conv import DeformConv2dPack
from .deform_roi_pool import DeformRoIPool, deform_roi_pool
from .deform_roi_pool_pack import DeformRoIPoolPack
from .frozen_bn import FrozenBatchNorm2d
from .fuse_conv_bn import fuse_conv_bn
from .modulated_deform_conv import ModulatedDeformConv2dPack
from .modulated_deform_roi_pool_pack import ModulatedDeformRoIPoolPack
from .nms import batched_nms, check_nms_cfg, multiclass_nms
from .normed_linear import NormedLinear
from .roi_ops import RoIAlign, RoIPool
from .saconv import SAConv2d
from .set_nms import set_nms
from .soft_nms import batched_soft_nms, nms_match, soft_nms
from .trident_conv import TridentConv

__all__ = ['FrozenBatchNorm2d', 'fuse_conv_bn', 'batched_nms', 'multiclass_nms', 'check_nms_cfg', 'soft_nms',
           'batched_soft_nms', 'nms_match', 'RoIAlign', 'RoIPool', 'CropAndResize', 'CARAFEPack', 'NormedLinear',
           'DeformConv2dPack', 'ModulatedDeformConv2dPack', 'SAConv2d', 'TridentConv',
           'DeformRoIPool', 'deform_roi_pool', 'DeformRoIPoolPack', 'ModulatedDeformRoIPoolPack', 'set_nms']
