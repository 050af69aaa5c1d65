"""``CrossEntropyLoss``: softmax cross-entropy (RoI head) or per-class sigmoid BCE (RPN)."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from rcnn_plugins.registry import MODELS
from .utils import check_avg_factor, check_reduction, resolve_reduction, weight_reduce_loss

# F.cross_entropy's default ignore label, used when no ignore_index is configured.
DEFAULT_IGNORE_INDEX = -100


def cross_entropy(pred: Tensor, label: Tensor, weight: Optional[Tensor] = None, reduction: str = 'mean',
                  avg_factor=None, class_weight: Optional[Tensor] = None, ignore_index: Optional[int] = None,
                  avg_non_ignore: bool = False) -> Tensor:
    """Softmax cross-entropy.

    Args:
        pred: (N, C) logits.
        label: (N,) long class indices; ``ignore_index`` entries contribute 0.
        weight: (N,) per-sample weights.
        class_weight: (C,) per-class weights (as F.cross_entropy's ``weight``).
        avg_non_ignore: with reduction 'mean' and no avg_factor, average over non-ignored
            samples only (else over all N, ignored ones counting as 0).
    """
    ignore_index = DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index
    loss = F.cross_entropy(pred, label, weight=class_weight, reduction='none', ignore_index=ignore_index)
    if avg_factor is None and avg_non_ignore and reduction == 'mean':
        avg_factor = (label != ignore_index).sum()
    if weight is not None:
        weight = weight.float()
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


def _expand_onehot_labels(labels: Tensor, label_weights: Optional[Tensor], label_channels: int,
                          ignore_index: int) -> Tuple[Tensor, Tensor, Tensor]:
    """(N,) class indices -> (N, C) one-hot targets, (N, C) weights and (N, C) valid mask.

    Labels outside [0, C) (e.g. the background index C) give an all-zero row: "no class".
    """
    valid = (labels >= 0) & (labels != ignore_index)
    in_range = valid & (labels < label_channels)
    classes = torch.arange(label_channels, device=labels.device)
    bin_labels = ((labels[:, None] == classes[None, :]) & in_range[:, None]).float()
    valid_mask = valid[:, None].expand(-1, label_channels).float()
    if label_weights is None:
        bin_weights = valid_mask
    else:
        bin_weights = label_weights.reshape(-1, 1).expand(-1, label_channels) * valid_mask
    return bin_labels, bin_weights, valid_mask


def binary_cross_entropy(pred: Tensor, label: Tensor, weight: Optional[Tensor] = None, reduction: str = 'mean',
                         avg_factor=None, class_weight: Optional[Tensor] = None, ignore_index: Optional[int] = None,
                         avg_non_ignore: bool = False) -> Tensor:
    """Sigmoid binary cross-entropy with logits.

    Args:
        pred: (N, C) logits (C = 1 in the RPN).
        label: (N,) class indices (expanded to one-hot; index C or more = background) or
            (N, C) binary targets.
        weight: (N,) or (N, C) weights.
        class_weight: (C,) weight of the positive term per class (BCE's ``pos_weight``).
    """
    ignore_index = DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index
    if pred.dim() != label.dim():
        label, weight, valid_mask = _expand_onehot_labels(label, weight, pred.size(-1), ignore_index)
    else:
        valid_mask = ((label >= 0) & (label != ignore_index)).float()
        weight = valid_mask if weight is None else weight * valid_mask
    if avg_factor is None and avg_non_ignore and reduction == 'mean':
        avg_factor = valid_mask.sum()
    loss = F.binary_cross_entropy_with_logits(pred, label.float(), pos_weight=class_weight, reduction='none')
    return weight_reduce_loss(loss, weight=weight.float(), reduction=reduction, avg_factor=avg_factor)


@MODELS.register_module()
class CrossEntropyLoss(nn.Module):
    """Cross-entropy loss module (MMDetection's ``CrossEntropyLoss``).

    Args:
        use_sigmoid: sigmoid BCE per class (RPN objectness) instead of softmax CE.
        use_mask: mask cross-entropy; not available here (no mask head).
        reduction: 'none' | 'mean' | 'sum'.
        class_weight: per-class weights.
        ignore_index: label to ignore (default: F.cross_entropy's -100).
        loss_weight: multiplier of the loss.
        avg_non_ignore: average over non-ignored elements only.
    """

    def __init__(self, use_sigmoid: bool = False, use_mask: bool = False, reduction: str = 'mean',
                 class_weight: Optional[List[float]] = None, ignore_index: Optional[int] = None,
                 loss_weight: float = 1.0, avg_non_ignore: bool = False) -> None:
        super().__init__()
        if use_mask:
            raise NotImplementedError('CrossEntropyLoss: use_mask=True (mask cross-entropy) is not implemented '
                                      'in rcnn_plugins, which has no mask head; set use_mask=False')
        self.use_sigmoid = use_sigmoid
        self.use_mask = use_mask
        self.reduction = check_reduction(reduction, 'CrossEntropyLoss')
        self.loss_weight = loss_weight
        self.class_weight = class_weight
        self.ignore_index = ignore_index
        self.avg_non_ignore = avg_non_ignore
        self.cls_criterion = binary_cross_entropy if use_sigmoid else cross_entropy

    def extra_repr(self) -> str:
        return f'use_sigmoid={self.use_sigmoid}, avg_non_ignore={self.avg_non_ignore}'

    def forward(self, cls_score: Tensor, label: Tensor, weight: Optional[Tensor] = None, avg_factor=None,
                reduction_override: Optional[str] = None, ignore_index: Optional[int] = None) -> Tensor:
        """Loss of ``cls_score`` (N, C) logits against ``label`` (N,) (see the functions above)."""
        reduction = resolve_reduction(reduction_override, self.reduction, 'CrossEntropyLoss')
        check_avg_factor(reduction, avg_factor, 'CrossEntropyLoss')
        if ignore_index is None:
            ignore_index = self.ignore_index
        class_weight = None if self.class_weight is None else cls_score.new_tensor(self.class_weight)
        return self.loss_weight * self.cls_criterion(
            cls_score, label, weight, reduction=reduction, avg_factor=avg_factor, class_weight=class_weight,
            ignore_index=ignore_index, avg_non_ignore=self.avg_non_ignore)
