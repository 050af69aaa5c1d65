"""Second-stage (RoI) heads: RoI feature extractors, box heads and the head that ties them."""
from .bbox_heads import BBoxHead, ConvFCBBoxHead, PretrainedFCBBoxHead, Shared2FCBBoxHead
from .roi_extractors import SingleRoIExtractor
from .cascade_roi_head import CascadeRoIHead
from .standard_roi_head import StandardRoIHead

__all__ = ['BBoxHead', 'CascadeRoIHead', 'ConvFCBBoxHead', 'PretrainedFCBBoxHead', 'Shared2FCBBoxHead', 'SingleRoIExtractor',
           'StandardRoIHead']
