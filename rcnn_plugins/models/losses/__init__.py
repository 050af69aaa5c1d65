"""Losses, registered in ``MODELS``, with MMDetection's weight / avg_factor / reduction semantics."""
from .accuracy import Accuracy, accuracy
from .balanced_l1_loss import BalancedL1Loss, balanced_l1_loss
from .bounded_iou_loss import BoundedIoULoss
from .ciou_loss import CIoULoss
from .cross_entropy_custom_loss import CrossEntropyCustomLoss
from .cross_entropy_loss import CrossEntropyLoss, binary_cross_entropy, cross_entropy
from .diou_loss import DIoULoss
from .focal_loss import FocalLoss, sigmoid_focal_loss
from .giou_loss import GIoULoss
from .iou_loss import IoULoss
from .pisa_loss import carl_loss, isr_p
from .smooth_l1_loss import L1Loss, SmoothL1Loss, l1_loss, smooth_l1_loss
from .utils import reduce_loss, weight_reduce_loss

__all__ = ['CrossEntropyLoss', 'CrossEntropyCustomLoss', 'SmoothL1Loss', 'L1Loss', 'BalancedL1Loss', 'FocalLoss',
           'IoULoss', 'GIoULoss', 'DIoULoss', 'CIoULoss', 'BoundedIoULoss', 'Accuracy', 'accuracy',
           'cross_entropy', 'binary_cross_entropy', 'smooth_l1_loss', 'l1_loss', 'balanced_l1_loss',
           'sigmoid_focal_loss', 'reduce_loss', 'weight_reduce_loss', 'isr_p', 'carl_loss']
