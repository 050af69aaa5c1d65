"""Soft-NMS and ``nms_match`` in plain PyTorch, with mmcv's (compiled ``mmcv.ops``) results.

Soft-NMS (Bodla et al., 2017) does not remove the boxes that overlap a selected box: it decays
their scores, ``s *= w(IoU)``:

- ``'linear'``: ``w = 1 - IoU`` where ``IoU >= iou_threshold``, else 1;
- ``'gaussian'``: ``w = exp(-IoU^2 / sigma)`` (``iou_threshold`` unused);
- ``'naive'``: ``w = 0`` where ``IoU >= iou_threshold``, else 1 (hard NMS with ``min_score``).

A box whose decayed score falls below ``min_score`` is discarded. As in mmcv, the very first
selected box (the highest score overall) is kept whatever its score, every other box is checked.

Why a loop remains: each selection depends on the scores the previous selections decayed, so
the selections are sequential. The loop here is a *tensor* loop: one iteration selects the best
live box of **every group (class) at once** and decays all boxes of every group with one
vectorised IoU row per group, so it runs ``min(max boxes kept per group, max_num)`` times (at
most the largest group's size), never once per box; a group's boxes sit in one padded row of a
``(G, M)`` matrix. One host sync per iteration checks whether any box is left.

Ordering: a group's selected scores never increase (scores only decay), so sorting all
selections by their score at selection time gives mmcv's order for the class-offset boxes of
``batched_nms`` (ties aside).
"""
from typing import List, Tuple

import torch
from torch import Tensor
from torchvision.ops import nms as tv_nms

SOFT_NMS_METHODS = ('naive', 'linear', 'gaussian')
# Largest (G, M, M) pairwise IoU tensor computed up front (float32 elements: 128 MiB).
_MAX_IOU_MATRIX = 1 << 25


def _iou_rows(selected: Tensor, boxes: Tensor) -> Tensor:
    """IoU of each group's selected box with all its boxes: (G, 4), (G, M, 4) -> (G, M).

    The same float operations as mmcv's / torchvision's CPU kernels (``inter / (a1 + a2 - inter)``).
    """
    sel = selected[:, None, :]
    w = (torch.minimum(sel[..., 2], boxes[..., 2]) - torch.maximum(sel[..., 0], boxes[..., 0])).clamp(min=0)
    h = (torch.minimum(sel[..., 3], boxes[..., 3]) - torch.maximum(sel[..., 1], boxes[..., 1])).clamp(min=0)
    inter = w * h
    area_sel = (sel[..., 2] - sel[..., 0]) * (sel[..., 3] - sel[..., 1])
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return inter / (area_sel + area - inter)


def _group_rows(idxs: Tensor) -> Tuple[Tensor, Tensor, int, int]:
    """Place N boxes into rows by group: -> (row (N,), col (N,), num_groups G, row length M)."""
    _, row = torch.unique(idxs, return_inverse=True)
    num_groups = int(row.max()) + 1
    order = torch.sort(row, stable=True).indices
    counts = torch.bincount(row, minlength=num_groups)
    starts = torch.cumsum(counts, 0) - counts
    col = torch.empty_like(row)
    col[order] = torch.arange(row.numel(), device=row.device) - starts[row[order]]
    return row, col, num_groups, int(counts.max())


def batched_soft_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float = 0.3,
                     sigma: float = 0.5, min_score: float = 1e-3, method: str = 'linear',
                     max_num: int = -1) -> Tuple[Tensor, Tensor]:
    """Soft-NMS independently per group ``idxs`` (boxes of different groups never decay each other).

    Args:
        boxes: (N, 4) xyxy pixels.
        scores: (N,).
        idxs: (N,) group (class) of each box; all equal for one soft-NMS over all boxes.
        iou_threshold, sigma, min_score, method: see the module docstring (mmcv's defaults).
        max_num: keep at most this many (highest decayed scores); <= 0 keeps all.

    Returns:
        dets: (K, 5) ``[x1, y1, x2, y2, decayed score]`` by descending decayed score.
        keep: (K,) indices of the kept boxes into the inputs.
    """
    if method not in SOFT_NMS_METHODS:
        raise ValueError(f'soft_nms: method must be one of {SOFT_NMS_METHODS}, got {method!r}')
    num = boxes.size(0)
    if num == 0:
        return boxes.new_zeros(0, 5), torch.zeros(0, dtype=torch.long, device=boxes.device)
    row, col, num_groups, width = _group_rows(idxs)
    # Padded (G, M) layout in float32 (mmcv's kernel is float32; half would lose the decay).
    grid_boxes = boxes.new_zeros(num_groups, width, 4, dtype=torch.float32)
    grid_boxes[row, col] = boxes.float()
    grid_scores = boxes.new_zeros(num_groups, width, dtype=torch.float32)
    grid_scores[row, col] = scores.float()
    grid_index = torch.full((num_groups, width), -1, dtype=torch.long, device=boxes.device)
    grid_index[row, col] = torch.arange(num, device=boxes.device)
    # Dead boxes (padding, selected, below min_score) hold -inf, so argmax picks the best live one.
    # mmcv checks min_score only on boxes other than the overall first selection.
    first = scores.float().argmax()
    live = (grid_index >= 0) & (grid_scores >= min_score)
    live[row[first], col[first]] = True
    neg_inf = torch.tensor(float('-inf'), device=boxes.device)
    grid_scores = torch.where(live, grid_scores, neg_inf)

    groups = torch.arange(num_groups, device=boxes.device)
    # IoUs of all pairs in a group, once, when that fits (else one row per step): a step then only
    # gathers rows.
    iou_all = _iou_rows(grid_boxes.reshape(-1, 4), grid_boxes.repeat_interleave(width, 0)).reshape(
        num_groups, width, width) if num_groups * width * width <= _MAX_IOU_MATRIX else None
    bound = width if max_num <= 0 else min(width, max_num)
    kept_index: List[Tensor] = []
    kept_score: List[Tensor] = []
    for _ in range(bound):  # sequential selections, one per group per step (see module docstring)
        best = grid_scores.argmax(dim=1)                                            # (G,)
        selected = grid_scores[groups, best]
        has = selected > neg_inf
        if not bool(has.any()):
            break
        kept_index.append(grid_index[groups, best][has])
        kept_score.append(selected[has])
        grid_scores[groups, best] = neg_inf
        iou = iou_all[groups, best] if iou_all is not None else _iou_rows(grid_boxes[groups, best], grid_boxes)
        if method == 'gaussian':
            weight = torch.exp(-(iou * iou) / sigma)
        elif method == 'linear':
            weight = torch.where(iou >= iou_threshold, 1 - iou, torch.ones_like(iou))
        else:
            weight = (iou < iou_threshold).to(iou.dtype)
        decayed = grid_scores * weight          # -inf * 0 = nan on dead boxes: the test below drops it
        grid_scores = torch.where(decayed >= min_score, decayed, neg_inf)

    if not kept_index:
        return boxes.new_zeros(0, 5), torch.zeros(0, dtype=torch.long, device=boxes.device)
    keep, kept = torch.cat(kept_index), torch.cat(kept_score)
    kept, order = kept.sort(descending=True, stable=True)
    keep = keep[order]
    if max_num > 0:
        keep, kept = keep[:max_num], kept[:max_num]
    return torch.cat([boxes[keep], kept[:, None].to(boxes.dtype)], dim=-1), keep


def soft_nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.3, sigma: float = 0.5,
             min_score: float = 1e-3, method: str = 'linear', offset: int = 0) -> Tuple[Tensor, Tensor]:
    """mmcv's ``soft_nms``: one soft-NMS over all boxes -> (dets (K, 5) with decayed scores, inds (K,))."""
    if offset != 0:
        raise NotImplementedError('soft_nms: offset=1 (legacy +1 box widths) is not supported; use offset=0')
    idxs = torch.zeros(boxes.size(0), dtype=torch.long, device=boxes.device)
    return batched_soft_nms(boxes, scores, idxs, iou_threshold, sigma, min_score, method)


def nms_match(dets: Tensor, iou_threshold: float) -> List[Tensor]:
    """mmcv's ``nms_match``: the groups greedy NMS forms, each ``[kept, suppressed...]``.

    Args:
        dets: (N, 5) ``[x1, y1, x2, y2, score]``.
        iou_threshold: a box is suppressed by the first kept box (by descending score) that
            overlaps it with IoU >= this.

    Returns:
        One (1 + S_k,) long tensor per kept box, kept boxes by descending score, the suppressed
        members of each group by descending score (indices into ``dets``).

    Vectorised: the kept set is torchvision's NMS (its ``IoU > t`` made mmcv's ``IoU >= t`` by
    moving ``t`` down one float32 step); each suppressed box then joins the first kept box that
    precedes it and overlaps it enough, read off one (K, N) IoU matrix.
    """
    if dets.numel() == 0:
        return []
    if dets.dim() != 2 or dets.size(1) != 5:
        raise ValueError(f'nms_match: need dets (N, 5) [x1, y1, x2, y2, score], got {tuple(dets.shape)}')
    boxes, scores = dets[:, :4].float(), dets[:, 4].float()
    thr = torch.tensor(float(iou_threshold), dtype=torch.float32)
    thr_below = float(torch.nextafter(thr, torch.tensor(float('-inf'))))
    keep = tv_nms(boxes, scores, thr_below)                                        # (K,) by score
    order = scores.sort(descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device)
    iou = _iou_rows(boxes[keep], boxes[None].expand(keep.numel(), -1, -1))        # (K, N)
    is_kept = torch.zeros(boxes.size(0), dtype=torch.bool, device=boxes.device)
    is_kept[keep] = True
    match = (iou >= thr) & (rank[keep][:, None] < rank[None]) & ~is_kept[None]
    owner = torch.where(match.any(0), match.float().argmax(0), torch.full_like(rank, -1))  # first kept owner
    members = order[owner[order] >= 0]                                             # suppressed, by score
    by_owner = owner[members].sort(stable=True).indices                            # grouped, score order kept
    counts = torch.bincount(owner[members], minlength=keep.numel()).tolist()
    parts = members[by_owner].split(counts)
    # Output assembly only: mmcv returns one tensor per kept box.
    return [torch.cat([keep[k:k + 1], part]).to(dets.device) for k, part in enumerate(parts)]
