"""Loss reduction helpers with MMDetection's ``weight`` / ``avg_factor`` / ``reduction`` semantics.

Every loss here computes an element-wise loss, multiplies it by ``weight`` (if given) and reduces:
``'none'`` keeps it, ``'sum'`` sums, ``'mean'`` averages over elements, or, when ``avg_factor``
is given, divides the sum by ``avg_factor + eps`` (eps = float32 machine epsilon, so an
``avg_factor`` of 0 gives 0 rather than NaN). ``avg_factor`` with ``'sum'`` is an error.

A bad ``reduction`` / ``reduction_override`` raises :class:`MMDetArgumentError`, which is both a
``ValueError`` and the ``AssertionError`` MMDetection's losses raise for it.
"""
from typing import Optional, Union

import torch
from torch import Tensor

from ..utils import MMDetArgumentError

REDUCTIONS = ('none', 'mean', 'sum')


def check_reduction(reduction: str, owner: str) -> str:
    if reduction not in REDUCTIONS:
        raise MMDetArgumentError(f"{owner}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def resolve_reduction(reduction_override: Optional[str], reduction: str, owner: str) -> str:
    """The reduction a call uses: ``reduction_override`` (None or one of REDUCTIONS) or the default."""
    if reduction_override is not None:
        check_reduction(reduction_override, f'{owner} reduction_override')
    return check_reduction(reduction_override or reduction, owner)


def check_avg_factor(reduction: str, avg_factor, owner: str) -> None:
    """``avg_factor`` only divides a ``'mean'`` (or is ignored by ``'none'``); with ``'sum'`` it is an error."""
    if avg_factor is not None and reduction == 'sum':
        raise ValueError(f'{owner}: avg_factor can not be used with reduction="sum"; use reduction="mean" '
                         '(sum / avg_factor) or drop avg_factor')


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Reduce an element-wise loss: ``'none'`` / ``'mean'`` / ``'sum'``."""
    check_reduction(reduction, 'reduce_loss')
    if reduction == 'mean':
        return loss.mean()
    if reduction == 'sum':
        return loss.sum()
    return loss


def weight_reduce_loss(loss: Tensor, weight: Optional[Tensor] = None, reduction: str = 'mean',
                       avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
    """Multiply an element-wise ``loss`` by ``weight`` (broadcastable), then reduce.

    With ``avg_factor`` and reduction ``'mean'``: ``sum / (avg_factor + eps)``; with ``'none'`` the
    weighted loss is returned as is.
    """
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        return reduce_loss(loss, reduction)
    check_reduction(reduction, 'weight_reduce_loss')
    check_avg_factor(reduction, avg_factor, 'weight_reduce_loss')
    if reduction == 'mean':
        return loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)
    return loss
