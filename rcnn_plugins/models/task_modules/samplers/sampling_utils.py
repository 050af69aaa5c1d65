"""Vectorised random picks shared by the samplers: a random subset, a random subset per group
(per gt instance, per IoU bin) with a quota, and "the rest" of a set, without Python loops over
boxes or groups."""
import torch
from torch import Tensor


def random_subset(inds: Tensor, num: int) -> Tensor:
    """``num`` distinct random elements of the 1-D ``inds`` (all of them if there are fewer)."""
    if inds.numel() <= num:
        return inds
    return inds[torch.randperm(inds.numel(), device=inds.device)[:num]]


def random_per_group(inds: Tensor, groups: Tensor, quota: int) -> Tensor:
    """Up to ``quota`` random elements of ``inds`` (K,) from each group ``groups`` (K,) names.

    Elements are ordered by (group, random key); an element is kept when its rank inside its
    group is below the quota. Groups are any integers.
    """
    if inds.numel() == 0 or quota <= 0:
        return inds[:0]
    order = torch.argsort(torch.rand(inds.numel(), device=inds.device))
    order = order[torch.argsort(groups[order], stable=True)]  # by group, random inside a group
    _, counts = torch.unique_consecutive(groups[order], return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    rank = torch.arange(inds.numel(), device=inds.device) - starts
    return inds[order[rank < quota]]


def remaining(inds: Tensor, taken: Tensor, size: int) -> Tensor:
    """Elements of ``inds`` not in ``taken`` (both 1-D indices below ``size``), in ``inds`` order."""
    mask = torch.zeros(size, dtype=torch.bool, device=inds.device)
    mask[taken] = True
    return inds[~mask[inds]]
