"""Batch samplers (registered in ``DATA_SAMPLERS``)."""
from .aspect_ratio_batch_sampler import AspectRatioBatchSampler

__all__ = ['AspectRatioBatchSampler']
