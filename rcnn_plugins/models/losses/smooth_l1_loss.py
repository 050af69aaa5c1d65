"""``SmoothL1Loss`` and ``L1Loss``: box regression losses on (N, 4) deltas."""
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from rcnn_plugins.registry import MODELS
from .utils import check_avg_factor, check_reduction, resolve_reduction, weight_reduce_loss


def smooth_l1_loss(pred: Tensor, target: Tensor, beta: float = 1.0) -> Tensor:
    """Element-wise smooth L1 (Huber / beta): 0.5 x^2 / beta if |x| < beta else |x| - 0.5 beta."""
    if beta <= 0:
        raise ValueError(f'smooth_l1_loss: beta must be > 0, got {beta} (use L1Loss for beta = 0)')
    diff = torch.abs(pred - target)
    return torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Element-wise |pred - target|."""
    return torch.abs(pred - target)


class _RegressionLoss(nn.Module):
    """Shared forward: element-wise loss, weight, reduction, ``loss_weight``."""

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, self.__class__.__name__)
        self.loss_weight = loss_weight

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, avg_factor=None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Loss of ``pred`` against ``target`` (both (N, 4)); ``weight`` (N, 4) or broadcastable."""
        reduction = resolve_reduction(reduction_override, self.reduction, self.__class__.__name__)
        check_avg_factor(reduction, avg_factor, self.__class__.__name__)  # also with no boxes, as MMDetection
        if pred.shape != target.shape:
            raise ValueError(f'{self.__class__.__name__}: pred and target shapes differ: '
                             f'{tuple(pred.shape)} vs {tuple(target.shape)}')
        if target.numel() == 0:
            # No boxes (e.g. no positives): a zero that keeps the graph connected, not mean([]) = NaN.
            return pred.sum() * 0
        loss = weight_reduce_loss(self.elementwise(pred, target), weight, reduction, avg_factor)
        return self.loss_weight * loss


@MODELS.register_module()
class SmoothL1Loss(_RegressionLoss):
    """Smooth L1 loss (Fast R-CNN's box loss). ``beta``: where the quadratic part ends."""

    def __init__(self, beta: float = 1.0, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        if beta <= 0:
            raise ValueError(f'SmoothL1Loss: beta must be > 0, got {beta} (use L1Loss for beta = 0)')
        self.beta = beta

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        return smooth_l1_loss(pred, target, self.beta)


@MODELS.register_module()
class L1Loss(_RegressionLoss):
    """L1 loss (MMDetection's default box loss of Faster R-CNN)."""

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        return l1_loss(pred, target)
