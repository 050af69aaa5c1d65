"""Batch samplers (registered in ``DATA_SAMPLERS``)."""
from .aspect_ratio_batch_sampler import AspectRatioBatchSampler
from .resumable_batch_sampler import ResumableBatchSampler, SeededIndices

__all__ = ['AspectRatioBatchSampler', 'ResumableBatchSampler', 'SeededIndices']
