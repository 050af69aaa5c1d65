"""Data containers (``DetDataSample``) and plain-tensor box operations."""
from .bbox import bbox2roi, bbox_cxcywh_to_xyxy, bbox_overlaps, bbox_xyxy_to_cxcywh, box_area, clip_boxes, rescale_boxes
from .det_data_sample import DetDataSample, InstanceList, OptSampleList, SampleList

__all__ = ['DetDataSample', 'SampleList', 'OptSampleList', 'InstanceList', 'bbox_overlaps', 'bbox2roi',
           'bbox_xyxy_to_cxcywh', 'bbox_cxcywh_to_xyxy', 'box_area', 'clip_boxes', 'rescale_boxes']
