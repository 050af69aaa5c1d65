"""Detectors: the two-stage detector, Faster R-CNN, Fast R-CNN (given proposals) and the proposal-only RPN."""
from .base import BaseDetector
from .fast_rcnn import FastRCNN
from .faster_rcnn import FasterRCNN
from .rpn import RPN
from .two_stage import TwoStageDetector

__all__ = ['BaseDetector', 'TwoStageDetector', 'FasterRCNN', 'FastRCNN', 'RPN']
