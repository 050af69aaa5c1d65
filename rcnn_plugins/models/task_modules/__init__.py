"""Task modules: the non-learned building blocks of the detection heads (anchor generators,
assigners, samplers, box coders). Importing this package registers them all in ``TASK_UTILS``."""
from .assigners import AssignResult, BboxOverlaps2D, MaxIoUAssigner
from .coders import DeltaXYWHBBoxCoder
from .prior_generators import AnchorGenerator
from .samplers import OHEMSampler, RandomSampler, SamplingResult

__all__ = ['AnchorGenerator', 'AssignResult', 'BboxOverlaps2D', 'MaxIoUAssigner', 'OHEMSampler', 'RandomSampler',
           'SamplingResult', 'DeltaXYWHBBoxCoder']
