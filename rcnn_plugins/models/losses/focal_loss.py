"""``FocalLoss`` (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017), sigmoid form.

Per class logit x with binary target t and p = sigmoid(x):
``FL = -alpha_t (1 - p_t)^gamma log(p_t)``, p_t = p if t = 1 else 1 - p, alpha_t = alpha if t = 1
else 1 - alpha. Computed with ``binary_cross_entropy_with_logits`` (stable for large logits).

Works wherever a sigmoid classification loss does, e.g. as the RPN's ``loss_cls`` (one logit per
anchor, label 0 = object, 1 = background) or a dense head's; usually with ``PseudoSampler``
(no sampling: every anchor counts, the loss is averaged over the positives).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from rcnn_plugins.registry import MODELS
from ..utils import MMDetArgumentError
from .utils import check_avg_factor, check_reduction, resolve_reduction, weight_reduce_loss


def sigmoid_focal_loss(pred: Tensor, target: Tensor, gamma: float = 2.0, alpha: float = 0.25,
                       activated: bool = False) -> Tensor:
    """Element-wise focal loss of (N, C) logits (or probabilities if ``activated``) against (N, C) 0/1 targets."""
    target = target.type_as(pred)
    prob = pred if activated else pred.sigmoid()
    pt = (1 - prob) * target + prob * (1 - target)  # 1 - p_t
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    if activated:
        bce = F.binary_cross_entropy(prob, target, reduction='none')
    else:
        bce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
    return bce * focal_weight


@MODELS.register_module()
class FocalLoss(nn.Module):
    """Sigmoid focal loss.

    Args:
        use_sigmoid: must be True (MMDetection has only the sigmoid form).
        gamma: focusing exponent (2).
        alpha: weight of the positive term (0.25); negatives get 1 - alpha.
        reduction, loss_weight: as every loss.
        activated: ``pred`` are probabilities already, not logits.
    """

    def __init__(self, use_sigmoid: bool = True, gamma: float = 2.0, alpha: float = 0.25, reduction: str = 'mean',
                 loss_weight: float = 1.0, activated: bool = False) -> None:
        super().__init__()
        if use_sigmoid is not True:
            raise MMDetArgumentError('FocalLoss: only the sigmoid focal loss exists (use_sigmoid=True), as in '
                                     'MMDetection; for a softmax head use CrossEntropyLoss')
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = check_reduction(reduction, 'FocalLoss')
        self.loss_weight = loss_weight
        self.activated = activated

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None, avg_factor=None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Loss of ``pred`` (N, C) against ``target``.

        Args:
            pred: (N, C) logits (probabilities if ``activated``).
            target: (N,) class indices, ``C`` (or more) meaning background, or (N, C) 0/1 targets.
            weight: (N,) per sample, or (N, C) / anything with N * C elements per logit.
        """
        reduction = resolve_reduction(reduction_override, self.reduction, 'FocalLoss')
        check_avg_factor(reduction, avg_factor, 'FocalLoss')
        if pred.dim() != target.dim():
            num_classes = pred.size(1)
            # Background (index num_classes) becomes an all-zero row; indices above it as well.
            classes = torch.arange(num_classes, device=target.device)
            target = (target[:, None] == classes[None, :])
        loss = sigmoid_focal_loss(pred, target, self.gamma, self.alpha, self.activated)
        if weight is not None and weight.shape != loss.shape:
            if weight.numel() == loss.size(0):
                weight = weight.reshape(-1, 1)
            elif weight.numel() == loss.numel():
                weight = weight.reshape(loss.size(0), -1)
            else:
                raise MMDetArgumentError(f'FocalLoss: weight {tuple(weight.shape)} fits neither (N,) nor (N, C) '
                                         f'for a loss of {tuple(loss.shape)}')
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)

    def extra_repr(self) -> str:
        return f'gamma={self.gamma}, alpha={self.alpha}, activated={self.activated}'
