"""``IoULoss``: a loss on the IoU of each predicted box with its target (UnitBox, Yu et al., 2016).

``mode='log'``: -log(IoU) (UnitBox); ``'linear'``: 1 - IoU; ``'square'``: 1 - IoU^2. The IoU is
clamped to at least ``eps`` so the log stays finite for disjoint boxes.
"""
import warnings

import torch
from torch import Tensor

from rcnn_plugins.registry import MODELS
from ..utils import MMDetArgumentError
from .iou_loss_base import IoULossBase

IOU_MODES = ('linear', 'square', 'log')


def aligned_iou(pred: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """(N,) IoU of each aligned pair of (N, 4) xyxy boxes; union floored at ``eps`` (no NaN for empty boxes)."""
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[:, 0] * wh[:, 1]
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    return overlap / (area_p + area_t - overlap).clamp(min=eps)


@MODELS.register_module()
class IoULoss(IoULossBase):
    """IoU loss on decoded boxes (use with ``reg_decoded_bbox=True``).

    Args:
        linear: deprecated, same as ``mode='linear'``.
        eps: lower bound of the IoU.
        reduction, loss_weight: as every loss.
        mode: 'log' (-log IoU), 'linear' (1 - IoU) or 'square' (1 - IoU^2).
    """

    def __init__(self, linear: bool = False, eps: float = 1e-6, reduction: str = 'mean', loss_weight: float = 1.0,
                 mode: str = 'log') -> None:
        super().__init__(eps=eps, reduction=reduction, loss_weight=loss_weight)
        if mode not in IOU_MODES:
            raise MMDetArgumentError(f'IoULoss: mode must be one of {IOU_MODES}, got {mode!r}')
        if linear:
            warnings.warn("IoULoss(linear=True) is deprecated (as in MMDetection); use mode='linear'",
                          DeprecationWarning)
            mode = 'linear'
        self.linear = linear
        self.mode = mode

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        ious = aligned_iou(pred, target).clamp(min=self.eps)
        if self.mode == 'linear':
            return 1 - ious
        if self.mode == 'square':
            return 1 - ious ** 2
        return -ious.log()

    def extra_repr(self) -> str:
        return f'mode={self.mode!r}, ' + super().extra_repr()
