"""``DIoULoss``: 1 - IoU + rho^2 / c^2 (Zheng et al., 2020), on decoded boxes.

rho is the distance between the box centres, c the diagonal of the smallest enclosing box: the
penalty pulls the centres together even when the boxes do not overlap.
"""
from torch import Tensor

from rcnn_plugins.registry import MODELS
from .iou_loss_base import IoULossBase, aligned_iou_parts, centre_distance2


@MODELS.register_module()
class DIoULoss(IoULossBase):
    """Distance-IoU loss (use with ``reg_decoded_bbox=True``).

    Args:
        eps: added to the union and to c^2.
        reduction, loss_weight: as every loss.
    """

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        ious, _, enclose_wh = aligned_iou_parts(pred, target, self.eps)
        c2 = (enclose_wh ** 2).sum(-1) + self.eps
        return 1 - (ious - centre_distance2(pred, target) / c2)
