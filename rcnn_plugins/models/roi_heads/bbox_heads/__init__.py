"""Second-stage box heads."""
from .bbox_head import BBoxHead
from .convfc_bbox_head import ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead
from .double_bbox_head import DoubleConvFCBBoxHead
from .multi_instance_bbox_head import MultiInstanceBBoxHead
from .pretrained_fc_bbox_head import PretrainedFCBBoxHead
from .sabl_head import SABLHead

__all__ = ['BBoxHead', 'ConvFCBBoxHead', 'Shared2FCBBoxHead', 'Shared4Conv1FCBBoxHead', 'DoubleConvFCBBoxHead',
           'PretrainedFCBBoxHead', 'SABLHead', 'MultiInstanceBBoxHead']
