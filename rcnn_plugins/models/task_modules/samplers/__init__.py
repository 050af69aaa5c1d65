"""Samplers: pick the positive / negative priors a loss is computed on."""
from .ohem_sampler import OHEMSampler
from .random_sampler import RandomSampler
from .sampling_result import SamplingResult

__all__ = ['OHEMSampler', 'RandomSampler', 'SamplingResult']
