"""``accuracy``: top-k classification accuracy in percent, logged by the RoI head as ``acc``."""
from typing import Optional, Tuple, Union

import torch.nn as nn
from torch import Tensor

from rcnn_plugins.registry import MODELS


def accuracy(pred: Tensor, target: Tensor, topk: Union[int, Tuple[int, ...]] = 1,
             thresh: Optional[float] = None) -> Union[Tensor, Tuple[Tensor, ...]]:
    """Percentage of samples whose target is among the top-k predictions.

    Args:
        pred: (N, C) scores or logits.
        target: (N,) long class indices.
        topk: k, or a tuple of ks (then a tuple of results is returned).
        thresh: if given, a top-k hit also needs a score above it.

    Returns:
        (1,) tensor(s) in [0, 100]; 0 for an empty batch.
    """
    ks = (topk,) if isinstance(topk, int) else tuple(topk)
    if pred.dim() != 2 or target.dim() != 1 or pred.size(0) != target.size(0):
        raise ValueError(f'accuracy: need pred (N, C) and target (N,), got {tuple(pred.shape)} and '
                         f'{tuple(target.shape)}')
    maxk = max(ks)
    if maxk > pred.size(1):
        raise ValueError(f'accuracy: topk {maxk} exceeds the number of classes {pred.size(1)}')
    if pred.size(0) == 0:
        res = tuple(pred.new_zeros(1) for _ in ks)
    else:
        values, labels = pred.topk(maxk, dim=1)  # (N, maxk)
        correct = labels == target[:, None]
        if thresh is not None:
            correct = correct & (values > thresh)
        res = tuple(correct[:, :k].any(dim=1).float().sum(0, keepdim=True) * (100.0 / pred.size(0)) for k in ks)
    return res[0] if isinstance(topk, int) else res


@MODELS.register_module()
class Accuracy(nn.Module):
    """Module wrapper of :func:`accuracy`."""

    def __init__(self, topk: Union[int, Tuple[int, ...]] = (1,), thresh: Optional[float] = None) -> None:
        super().__init__()
        self.topk = topk
        self.thresh = thresh

    def forward(self, pred: Tensor, target: Tensor):
        return accuracy(pred, target, self.topk, self.thresh)
