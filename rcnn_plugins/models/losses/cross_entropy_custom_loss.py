"""``CrossEntropyCustomLoss``: ``CrossEntropyLoss`` that also tells the box head how many logits to
predict, how to turn them into scores and how to measure accuracy (MMDetection's "custom" loss
interface: ``custom_cls_channels``, ``custom_activation``, ``custom_accuracy``).

With ``use_sigmoid=True`` (V3Det's large-vocabulary configs) the head predicts one logit per class
and the background score is ``1 - sum of the class probabilities``, clamped to [0, 1].
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from rcnn_plugins.registry import MODELS
from ..utils import MMDetArgumentError
from .accuracy import accuracy
from .cross_entropy_loss import CrossEntropyLoss


@MODELS.register_module()
class CrossEntropyCustomLoss(CrossEntropyLoss):
    """Cross-entropy with the custom-classifier interface.

    Args:
        num_classes: foreground classes (required, as in MMDetection).
        others: as :class:`CrossEntropyLoss`.
    """

    def __init__(self, use_sigmoid: bool = False, use_mask: bool = False, reduction: str = 'mean',
                 num_classes: int = -1, class_weight: Optional[List[float]] = None, ignore_index: Optional[int] = None,
                 loss_weight: float = 1.0, avg_non_ignore: bool = False) -> None:
        super().__init__(use_sigmoid=use_sigmoid, use_mask=use_mask, reduction=reduction, class_weight=class_weight,
                         ignore_index=ignore_index, loss_weight=loss_weight, avg_non_ignore=avg_non_ignore)
        if num_classes == -1:
            raise MMDetArgumentError('CrossEntropyCustomLoss: num_classes is required (the number of foreground '
                                     'classes of the head)')
        self.num_classes = num_classes
        self.custom_cls_channels = True
        self.custom_activation = True
        self.custom_accuracy = True

    def get_cls_channels(self, num_classes: int) -> int:
        """Logits the classifier predicts: num_classes (+1 background logit for softmax)."""
        if num_classes != self.num_classes:
            raise MMDetArgumentError(f'CrossEntropyCustomLoss: head has {num_classes} classes, loss '
                                     f'num_classes={self.num_classes}')
        return num_classes if self.use_sigmoid else num_classes + 1

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """(N, channels) logits -> (N, num_classes + 1) scores, background last."""
        fine = cls_score[:, :self.num_classes]
        if not self.use_sigmoid:
            return F.softmax(torch.cat([fine, cls_score[:, [-1]]], dim=-1), dim=-1)
        probs = fine.sigmoid()
        background = (1 - probs.sum(dim=1, keepdim=True)).clamp(min=0, max=1)
        return torch.cat([probs, background], dim=1)

    def get_accuracy(self, cls_score: Tensor, labels: Tensor) -> dict:
        """dict(acc_classes=accuracy over the foreground samples only)."""
        pos = labels < self.num_classes
        return dict(acc_classes=accuracy(cls_score[:, :self.num_classes][pos], labels[pos]))
