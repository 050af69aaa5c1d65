"""Samplers: pick the positive / negative priors a loss is computed on."""
from .combined_sampler import CombinedSampler
from .instance_balanced_pos_sampler import InstanceBalancedPosSampler
from .iou_balanced_neg_sampler import IoUBalancedNegSampler
from .multi_instance_random_sampler import MultiInsRandomSampler
from .multi_instance_sampling_result import MultiInstanceSamplingResult
from .ohem_sampler import OHEMSampler
from .pseudo_sampler import PseudoSampler
from .random_sampler import RandomSampler
from .sampling_result import SamplingResult
from .score_hlr_sampler import ScoreHLRSampler

__all__ = ['CombinedSampler', 'InstanceBalancedPosSampler', 'IoUBalancedNegSampler', 'MultiInsRandomSampler',
           'MultiInstanceSamplingResult', 'OHEMSampler', 'PseudoSampler',
           'RandomSampler', 'SamplingResult', 'ScoreHLRSampler']
