"""Detectors: the two-stage detector, Faster R-CNN and the proposal-only RPN."""
from .base import BaseDetector
from .faster_rcnn import FasterRCNN
from .rpn import RPN
from .two_stage import TwoStageDetector

__all__ = ['BaseDetector', 'TwoStageDetector', 'FasterRCNN', 'RPN']
