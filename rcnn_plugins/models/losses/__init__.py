"""Losses, registered in ``MODELS``, with MMDetection's weight / avg_factor / reduction semantics."""
from .accuracy import Accuracy, accuracy
from .cross_entropy_loss import CrossEntropyLoss, binary_cross_entropy, cross_entropy
from .smooth_l1_loss import L1Loss, SmoothL1Loss, l1_loss, smooth_l1_loss
from .utils import reduce_loss, weight_reduce_loss

__all__ = ['CrossEntropyLoss', 'SmoothL1Loss', 'L1Loss', 'Accuracy', 'accuracy', 'cross_entropy',
           'binary_cross_entropy', 'smooth_l1_loss', 'l1_loss', 'reduce_loss', 'weight_reduce_loss']
