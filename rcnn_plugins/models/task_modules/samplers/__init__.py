"""Samplers: pick the positive / negative priors a loss is computed on."""
from .random_sampler import RandomSampler
from .sampling_result import SamplingResult

__all__ = ['RandomSampler', 'SamplingResult']
