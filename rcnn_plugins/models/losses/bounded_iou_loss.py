"""``BoundedIoULoss`` (Tychsen-Smith and Petersson, "Improving Object Localization with Fitness
NMS and Bounded IoU Loss", CVPR 2018), on decoded boxes.

Each coordinate gets the IoU upper bound reached when only that coordinate is wrong:
``1 - max(0, (w_t - 2|dx|) / (w_t + 2|dx|))`` for the centre shift dx (dy likewise) and
``1 - min(w_t / w_p, w_p / w_t)`` for the width (height likewise), then a smooth L1 with ``beta``
on each of the four terms. The loss is per coordinate, (N, 4), as are its weights.
"""
import torch
from torch import Tensor

from rcnn_plugins.registry import MODELS
from .iou_loss_base import IoULossBase


def bounded_iou_terms(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """(N, 4) terms [dx, dy, dw, dh] of the bound, before the smooth L1; no gradient into ``target``."""
    pred_ctr = (pred[:, :2] + pred[:, 2:]) * 0.5
    pred_wh = pred[:, 2:] - pred[:, :2]
    with torch.no_grad():
        target_ctr = (target[:, :2] + target[:, 2:]) * 0.5
        target_wh = target[:, 2:] - target[:, :2]
    d = (target_ctr - pred_ctr).abs()
    loss_ctr = 1 - torch.clamp((target_wh - 2 * d) / (target_wh + 2 * d + eps), min=0)
    loss_wh = 1 - torch.min(target_wh / (pred_wh + eps), pred_wh / (target_wh + eps))
    return torch.cat([loss_ctr, loss_wh], dim=1)  # (N, 4): dx, dy, dw, dh


@MODELS.register_module()
class BoundedIoULoss(IoULossBase):
    """Bounded IoU loss (use with ``reg_decoded_bbox=True``).

    Args:
        beta: end of the quadratic part of the smooth L1 applied to each term.
        eps: keeps the ratios finite.
        reduction, loss_weight: as every loss.
    """

    per_coordinate = True

    def __init__(self, beta: float = 0.2, eps: float = 1e-3, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(eps=eps, reduction=reduction, loss_weight=loss_weight)
        self.beta = beta

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        terms = bounded_iou_terms(pred, target, self.eps)
        return torch.where(terms < self.beta, 0.5 * terms * terms / self.beta, terms - 0.5 * self.beta)

    def extra_repr(self) -> str:
        return f'beta={self.beta}, ' + super().extra_repr()
