"""Box coders: boxes <-> regression targets."""
from .bucketing_bbox_coder import BucketingBBoxCoder
from .delta_xywh_bbox_coder import DeltaXYWHBBoxCoder
from .distance_point_bbox_coder import DistancePointBBoxCoder
from .legacy_delta_xywh_bbox_coder import LegacyDeltaXYWHBBoxCoder
from .tblr_bbox_coder import TBLRBBoxCoder

__all__ = ['BucketingBBoxCoder', 'DeltaXYWHBBoxCoder', 'DistancePointBBoxCoder', 'LegacyDeltaXYWHBBoxCoder',
           'TBLRBBoxCoder']
