"""Batch samplers (registered in ``DATA_SAMPLERS``)."""
from .aspect_ratio_batch_sampler import AspectRatioBatchSampler
from .class_aware_sampler import ClassAwareSampler
from .resumable_batch_sampler import ResumableBatchSampler, SeededIndices

__all__ = ['AspectRatioBatchSampler', 'ClassAwareSampler', 'ResumableBatchSampler', 'SeededIndices']
