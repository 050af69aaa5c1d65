"""Second-stage (RoI) heads: RoI feature extractors, box heads, shared heads and the heads that tie them
(StandardRoIHead and its Double-Head / Dynamic / PISA / Grid / multi-instance (CrowdDet) variants, CascadeRoIHead)."""
from .bbox_heads import (
                         BBoxHead,
                         ConvFCBBoxHead,
                         DoubleConvFCBBoxHead,
                         MultiInstanceBBoxHead,
                         PretrainedFCBBoxHead,
                         SABLHead,
                         Shared2FCBBoxHead,
                         Shared4Conv1FCBBoxHead,
)
from .cascade_roi_head import CascadeRoIHead
from .double_roi_head import DoubleHeadRoIHead
from .dynamic_roi_head import DynamicRoIHead
from .grid_heads import GridHead
from .grid_roi_head import GridRoIHead
from .multi_instance_roi_head import MultiInstanceRoIHead
from .pisa_roi_head import PISARoIHead
from .roi_extractors import GenericRoIExtractor, SingleRoIExtractor
from .shared_heads import ResLayer
from .standard_roi_head import StandardRoIHead
from .trident_roi_head import TridentRoIHead

__all__ = ['BBoxHead', 'SABLHead', 'ConvFCBBoxHead', 'DoubleConvFCBBoxHead', 'PretrainedFCBBoxHead',
           'Shared2FCBBoxHead', 'Shared4Conv1FCBBoxHead', 'CascadeRoIHead', 'DoubleHeadRoIHead', 'DynamicRoIHead',
           'GenericRoIExtractor', 'SingleRoIExtractor', 'ResLayer', 'StandardRoIHead', 'TridentRoIHead', 'PISARoIHead',
           'GridHead', 'GridRoIHead', 'MultiInstanceBBoxHead', 'MultiInstanceRoIHead']
