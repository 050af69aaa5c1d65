"""``BalancedL1Loss`` (Libra R-CNN, Pang et al., CVPR 2019): an L1-type box loss that raises the
gradient of inliers (|x| < beta) so they are not drowned out by outliers.

With b = e^(gamma / alpha) - 1 (so the two pieces meet at |x| = beta with equal gradient):

    L(x) = alpha / b * (b|x| + 1) * ln(b|x| / beta + 1) - alpha|x|     if |x| < beta
    L(x) = gamma|x| + gamma / b - alpha * beta                          otherwise
"""
import math

import torch
from torch import Tensor

from rcnn_plugins.registry import MODELS
from .smooth_l1_loss import _RegressionLoss


def balanced_l1_loss(pred: Tensor, target: Tensor, beta: float = 1.0, alpha: float = 0.5,
                     gamma: float = 1.5) -> Tensor:
    """Element-wise balanced L1 of ``pred - target`` (any shape)."""
    diff = torch.abs(pred - target)
    b = math.exp(gamma / alpha) - 1
    return torch.where(diff < beta, alpha / b * (b * diff + 1) * torch.log(b * diff / beta + 1) - alpha * diff,
                       gamma * diff + gamma / b - alpha * beta)


@MODELS.register_module()
class BalancedL1Loss(_RegressionLoss):
    """Balanced L1 loss on (N, 4) deltas (Libra R-CNN's ``loss_bbox``).

    Args:
        alpha: the inlier gradient scale (0.5).
        gamma: the outlier gradient (1.5).
        beta: where the two pieces meet.
        reduction, loss_weight: as every loss.
    """

    def __init__(self, alpha: float = 0.5, gamma: float = 1.5, beta: float = 1.0, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        if beta <= 0 or alpha <= 0:
            raise ValueError(f'BalancedL1Loss: need alpha > 0 and beta > 0, got alpha={alpha}, beta={beta}')
        self.alpha = alpha
        self.gamma = gamma
        self.beta = beta

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        return balanced_l1_loss(pred, target, self.beta, self.alpha, self.gamma)
