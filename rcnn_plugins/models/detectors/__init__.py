"""Detectors: the two-stage detector, Faster R-CNN, Cascade R-CNN, Grid R-CNN, CrowdDet, Fast R-CNN (given
proposals) and the proposal-only RPN."""
from .base import BaseDetector
from .cascade_rcnn import CascadeRCNN
from .crowddet import CrowdDet
from .fast_rcnn import FastRCNN
from .faster_rcnn import FasterRCNN
from .grid_rcnn import GridRCNN
from .rpn import RPN
from .trident_faster_rcnn import TridentFasterRCNN
from .two_stage import TwoStageDetector

__all__ = ['BaseDetector', 'TwoStageDetector', 'FasterRCNN', 'CascadeRCNN', 'FastRCNN', 'RPN', 'TridentFasterRCNN',
           'GridRCNN', 'CrowdDet']
