"""Detectors: the two-stage detector, Faster R-CNN and the proposal-only RPN."""
from .faster_rcnn import FasterRCNN
from .rpn import RPN
from .two_stage import TwoStageDetector

__all__ = ['TwoStageDetector', 'FasterRCNN', 'RPN']
