"""``GIoULoss``: 1 - GIoU (Rezatofighi et al., 2019), on decoded boxes.

GIoU = IoU - (C - U) / C, with U the union and C the area of the smallest box enclosing both; it
still has a gradient when the boxes do not overlap.
"""
import torch
from torch import Tensor

from rcnn_plugins.registry import MODELS
from .iou_loss_base import IoULossBase


@MODELS.register_module()
class GIoULoss(IoULossBase):
    """Generalized IoU loss (use with ``reg_decoded_bbox=True``).

    Args:
        eps: floor of the union and enclosing areas.
        reduction, loss_weight: as every loss.
    """

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        lt = torch.max(pred[:, :2], target[:, :2])
        rb = torch.min(pred[:, 2:], target[:, 2:])
        wh = (rb - lt).clamp(min=0)
        overlap = wh[:, 0] * wh[:, 1]
        area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
        area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
        union = (area_p + area_t - overlap).clamp(min=self.eps)
        enclose_wh = (torch.max(pred[:, 2:], target[:, 2:]) - torch.min(pred[:, :2], target[:, :2])).clamp(min=0)
        enclose = (enclose_wh[:, 0] * enclose_wh[:, 1]).clamp(min=self.eps)
        gious = overlap / union - (enclose - union) / enclose
        return 1 - gious
