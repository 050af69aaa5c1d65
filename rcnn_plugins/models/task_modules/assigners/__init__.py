"""Assigners (which ground truth each prior should predict) and IoU calculators."""
from .approx_max_iou_assigner import ApproxMaxIoUAssigner
from .assign_result import AssignResult
from .iou2d_calculator import BboxOverlaps2D
from .max_iou_assigner import MaxIoUAssigner
from .multi_instance_assigner import MultiInstanceAssigner
from .region_assigner import RegionAssigner

__all__ = ['ApproxMaxIoUAssigner', 'AssignResult', 'BboxOverlaps2D', 'MaxIoUAssigner', 'MultiInstanceAssigner',
           'RegionAssigner']
