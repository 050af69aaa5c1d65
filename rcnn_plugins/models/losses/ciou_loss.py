"""``CIoULoss``: DIoU plus an aspect-ratio term alpha * v (Zheng et al., 2021), on decoded boxes.

v = 4 / pi^2 (atan(w_t / h_t) - atan(w_p / h_p))^2 measures the aspect-ratio mismatch, and
alpha = v / (1 - IoU + v) (no gradient) weighs it. As in MMDetection (and the paper's journal
version), alpha is 0 while IoU <= 0.5 (the loss is then DIoU), and CIoU is clamped to [-1, 1].
"""
import math

import torch
from torch import Tensor

from rcnn_plugins.registry import MODELS
from .iou_loss_base import IoULossBase, aligned_iou_parts, centre_distance2


@MODELS.register_module()
class CIoULoss(IoULossBase):
    """Complete-IoU loss (use with ``reg_decoded_bbox=True``).

    Args:
        eps: added to the union, to c^2 and to the heights in the aspect ratios.
        reduction, loss_weight: as every loss.
    """

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        ious, _, enclose_wh = aligned_iou_parts(pred, target, self.eps)
        c2 = (enclose_wh ** 2).sum(-1) + self.eps
        w_p, h_p = pred[:, 2] - pred[:, 0], pred[:, 3] - pred[:, 1] + self.eps
        w_t, h_t = target[:, 2] - target[:, 0], target[:, 3] - target[:, 1] + self.eps
        v = (4 / math.pi ** 2) * (torch.atan(w_t / h_t) - torch.atan(w_p / h_p)) ** 2
        with torch.no_grad():
            alpha = (ious > 0.5).to(v.dtype) * v / (1 - ious + v)
        cious = ious - (centre_distance2(pred, target) / c2 + alpha * v)
        return 1 - cious.clamp(min=-1.0, max=1.0)
