"""``IoULossBase``: the shared ``forward`` of the box-overlap losses (IoU, GIoU, DIoU, CIoU, Bounded IoU).

These losses take *decoded* boxes, so a head uses them with ``reg_decoded_bbox=True``: both
``AnchorHead`` (RPN) and ``BBoxHead`` then decode their deltas against the priors before the loss
and regress the gt boxes themselves.

Semantics, as MMDetection's: ``pred`` and ``target`` are (N, 4) xyxy boxes in pixels; ``weight``
is (N,) or (N, 4) (a (N, 4) weight is averaged over its 4 columns for the per-box losses, kept
per coordinate for ``BoundedIoULoss``); the weighted loss is reduced by ``reduction`` /
``reduction_override`` and ``avg_factor``. Boxes with weight 0 contribute exactly 0 to the value
and the gradient even when their target is degenerate (the heads pass every anchor / RoI with
zero-box targets for the negatives), without a host sync to test for "no positive at all".
"""
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from ..utils import MMDetArgumentError
from .utils import check_avg_factor, check_reduction, resolve_reduction, weight_reduce_loss


class IoULossBase(nn.Module):
    """Base of the box-overlap losses; subclasses define :meth:`elementwise`.

    Args:
        eps: keeps divisions and logarithms finite.
        reduction: 'none' | 'mean' | 'sum'.
        loss_weight: multiplier of the loss.
    """

    #: True when ``elementwise`` returns one loss per coordinate (N, 4) instead of per box (N,).
    per_coordinate = False

    def __init__(self, eps: float = 1e-6, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.eps = eps
        self.reduction = check_reduction(reduction, type(self).__name__)
        self.loss_weight = loss_weight

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """(N, 4), (N, 4) boxes -> (N,) loss per box (or (N, 4) if ``per_coordinate``)."""
        raise NotImplementedError

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, avg_factor=None,
                reduction_override: Optional[str] = None, **kwargs) -> Tensor:
        """Loss of ``pred`` (N, 4) boxes against ``target`` (N, 4) boxes (xyxy, pixels)."""
        name = type(self).__name__
        reduction = resolve_reduction(reduction_override, self.reduction, name)
        check_avg_factor(reduction, avg_factor, name)
        if pred.shape != target.shape or pred.size(-1) != 4:
            raise MMDetArgumentError(f'{name}: pred and target must both be (N, 4) boxes, got '
                                     f'{tuple(pred.shape)} and {tuple(target.shape)}')
        if weight is not None and not self.per_coordinate and weight.dim() > 1:
            if weight.shape != pred.shape:
                raise MMDetArgumentError(f'{name}: a 2-D weight must be (N, 4) like pred, got {tuple(weight.shape)}')
            weight = weight.mean(-1)
        elif weight is not None and self.per_coordinate and weight.dim() == 1:
            weight = weight[:, None]  # one weight per box for the 4 coordinate terms
        if target.numel() == 0:
            # No boxes (no positives): a zero that keeps the graph connected, not mean([]) = NaN.
            return pred.sum() * 0
        # The overlap maths runs in float32 (float16 areas overflow), as MMDetection does.
        loss = self.elementwise(pred.float(), target.float()).to(pred.dtype)
        if weight is not None:
            # where(), not loss * weight: a degenerate zero-weight box (a negative's all-zero target)
            # must not turn a NaN/Inf into NaN in the sum, and its gradient is exactly 0.
            weight = weight.to(loss.dtype)
            loss = torch.where(weight > 0, loss * weight, loss.new_zeros(()))
        loss = weight_reduce_loss(loss, None, reduction, avg_factor)
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return f'eps={self.eps}, reduction={self.reduction!r}, loss_weight={self.loss_weight}'


def aligned_iou_parts(pred: Tensor, target: Tensor, eps: float):
    """Shared pieces of the aligned overlap losses.

    Returns:
        ious (N,), union (N,) (with eps), enclose_wh (N, 2) of the smallest box holding both.
    """
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[:, 0] * wh[:, 1]
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    union = area_p + area_t - overlap + eps
    enclose_wh = (torch.max(pred[:, 2:], target[:, 2:]) - torch.min(pred[:, :2], target[:, :2])).clamp(min=0)
    return overlap / union, union, enclose_wh


def centre_distance2(pred: Tensor, target: Tensor) -> Tensor:
    """(N,) squared distance between the box centres."""
    return (((target[:, :2] + target[:, 2:]) - (pred[:, :2] + pred[:, 2:])) ** 2).sum(-1) / 4
