"""Sliced inference for images far larger than the model's input: tile, predict, map back, merge.

A detector trained at ~512-1333 pixels sees a 4000x4000 aerial image resized by 1/4 to 1/8, and
small objects vanish. Slicing runs the detector on overlapping tiles at their own resolution
(each tile goes through the model's test pipeline like any image), shifts every tile's boxes by
the tile's offset, and merges the detections that several tiles made of one object:

- ``merge='nms'``: one class-wise NMS (IoU) over all boxes; right for objects smaller than the
  overlap, which some tile sees whole (the duplicates from the other tiles are suppressed);
- ``merge='nmm'`` (non-maximum merging, the default, as sahi's default ``GREEDYNMM`` with IoS 0.5):
  boxes of the same class from *different* tiles whose IoS (intersection over the smaller box)
  or IoU exceeds ``match_thr`` are joined, transitively, into the union of their boxes with the
  highest score. This also rebuilds objects larger than the overlap, which no tile sees whole:
  each tile gives a truncated box, and their union is the object.

Why not the ``sahi`` package: it depends on ``opencv-python``, which installs the same ``cv2``
module as this project's ``opencv-python-headless`` (two distributions writing one namespace;
whichever is installed last wins, and uninstalling one breaks the other). The part needed here
is small: tile coordinates come from one ``meshgrid``, all boxes are shifted in one op, NMS is
one ``batched_nms`` call and merging is a chunked pairwise match plus connected components,
with no Python loop over boxes.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import Tensor

from ..models.layers.nms import batched_nms

#: ``predict_fn(images) -> one InstanceData per image`` (bboxes (K, 4) in that image's pixels,
#: scores (K,), labels (K,)); images are (H, W, 3) uint8 BGR arrays.
PredictFn = Callable[[List[np.ndarray]], List[InstanceData]]

MERGE_MODES = ('nmm', 'nms')
MATCH_METRICS = ('ios', 'iou')


def _axis_starts(length: int, size: int, overlap: float) -> Tensor:
    """Start offsets of tiles of ``size`` covering ``[0, length)``, consecutive tiles sharing
    ``overlap * size`` pixels; the last tile is moved back to end at the border (as sahi does),
    so every tile has the full size when the image is at least that large."""
    size = min(size, length)
    step = max(1, int(round(size * (1 - overlap))))
    num = -(-(length - size) // step) + 1  # ceil
    return (torch.arange(num) * step).clamp(max=length - size)


def slice_grid(height: int, width: int, slice_hw: Tuple[int, int], overlap: float = 0.2) -> Tensor:
    """Tile rectangles covering a ``height`` x ``width`` image.

    Args:
        height, width: image size in pixels.
        slice_hw: tile (height, width); an image smaller than a tile gets one tile of its size.
        overlap: fraction of the tile size shared by neighbouring tiles, in [0, 1).

    Returns:
        (T, 4) int64 tiles x1, y1, x2, y2 (x2/y2 exclusive), row-major.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f'slice overlap must be in [0, 1), got {overlap}')
    tile_h, tile_w = (int(v) for v in slice_hw)
    if tile_h < 1 or tile_w < 1:
        raise ValueError(f'slice size must be positive (H, W), got {slice_hw}')
    ys = _axis_starts(height, tile_h, overlap)
    xs = _axis_starts(width, tile_w, overlap)
    y1, x1 = torch.meshgrid(ys, xs, indexing='ij')
    x1, y1 = x1.reshape(-1), y1.reshape(-1)
    return torch.stack([x1, y1, x1 + min(tile_w, width), y1 + min(tile_h, height)], dim=1)


def pairwise_ios(boxes1: Tensor, boxes2: Tensor, metric: str = 'ios') -> Tensor:
    """(M, 4), (N, 4) xyxy -> (M, N) intersection over the smaller box (``'ios'``) or over the union."""
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area1 = (boxes1[:, 2:] - boxes1[:, :2]).clamp(min=0).prod(-1)[:, None]
    area2 = (boxes2[:, 2:] - boxes2[:, :2]).clamp(min=0).prod(-1)[None, :]
    denom = torch.min(area1, area2) if metric == 'ios' else area1 + area2 - inter
    return inter / denom.clamp(min=1e-6)


def _matching_pairs(bboxes: Tensor, labels: Tensor, tile_ids: Tensor, metric: str, thr: float,
                    chunk: int = 1024) -> Tensor:
    """(2, E) index pairs i < j of same-class boxes from different tiles matching above ``thr``.

    Rows are processed ``chunk`` at a time so memory stays O(chunk x N), not O(N^2).
    """
    num = bboxes.size(0)
    pairs = []
    cols = torch.arange(num, device=bboxes.device)
    for start in range(0, num, chunk):
        rows = cols[start:start + chunk]
        match = pairwise_ios(bboxes[rows], bboxes, metric) > thr
        match &= labels[rows, None] == labels[None, :]
        # Boxes of one tile were already de-duplicated by the model's own NMS: only merge across tiles.
        match &= tile_ids[rows, None] != tile_ids[None, :]
        match &= rows[:, None] < cols[None, :]
        i, j = match.nonzero(as_tuple=True)
        pairs.append(torch.stack([rows[i], j]))
    return torch.cat(pairs, dim=1) if pairs else bboxes.new_zeros((2, 0), dtype=torch.long)


def connected_components(num: int, pairs: Tensor) -> Tensor:
    """(num,) component id (the smallest member index) of each node of the graph with edges ``pairs`` (2, E).

    Min-label propagation with pointer jumping: each round is one vectorised scatter over the
    edges; the number of rounds grows with the log of the longest chain, not with ``num``.
    """
    comp = torch.arange(num, device=pairs.device)
    if pairs.numel() == 0:
        return comp
    i, j = pairs
    while True:
        new = comp.clone()
        new.scatter_reduce_(0, i, comp[j], reduce='amin')
        new.scatter_reduce_(0, j, comp[i], reduce='amin')
        new = new[new]  # pointer jumping: adopt the label's own label
        if torch.equal(new, comp):
            return comp
        comp = new


def merge_predictions(bboxes: Tensor, scores: Tensor, labels: Tensor, tile_ids: Tensor, merge: str = 'nmm',
                      match_metric: str = 'ios', match_thr: float = 0.5,
                      nms_iou_thr: float = 0.5) -> Tuple[Tensor, Tensor, Tensor]:
    """Merge detections made by several tiles of one image.

    Args:
        bboxes: (N, 4) xyxy in image pixels; scores (N,); labels (N,) long.
        tile_ids: (N,) which tile (or the full-image pass) each box came from.
        merge: ``'nmm'`` (union of matching boxes) or ``'nms'`` (class-wise NMS); see module docstring.
        match_metric, match_thr: ``'nmm'`` joins boxes whose ``'ios'`` / ``'iou'`` is above ``match_thr``.
        nms_iou_thr: IoU threshold of ``'nms'``.

    Returns:
        bboxes (K, 4), scores (K,), labels (K,), by descending score.
    """
    if merge not in MERGE_MODES:
        raise ValueError(f'slice merge must be one of {MERGE_MODES}, got {merge!r}')
    if match_metric not in MATCH_METRICS:
        raise ValueError(f'slice match metric must be one of {MATCH_METRICS}, got {match_metric!r}')
    if bboxes.numel() == 0:
        return bboxes.reshape(0, 4), scores, labels
    if merge == 'nms':
        dets, keep = batched_nms(bboxes, scores, labels, dict(type='nms', iou_threshold=nms_iou_thr))
        return dets[:, :4], dets[:, 4], labels[keep]

    comp = connected_components(bboxes.size(0), _matching_pairs(bboxes, labels, tile_ids, match_metric, match_thr))
    ids, inverse = comp.unique(return_inverse=True)
    num = ids.numel()
    inf = bboxes.new_tensor(float('inf'))
    lo = inf.expand(num, 2).clone().scatter_reduce_(0, inverse[:, None].expand(-1, 2), bboxes[:, :2], 'amin')
    hi = (-inf).expand(num, 2).clone().scatter_reduce_(0, inverse[:, None].expand(-1, 2), bboxes[:, 2:], 'amax')
    merged_scores = scores.new_full((num,), -1.0).scatter_reduce_(0, inverse, scores, 'amax')
    merged_labels = labels[ids]  # a component holds one class: pairs only join boxes of the same class
    order = merged_scores.argsort(descending=True)
    return torch.cat([lo, hi], dim=1)[order], merged_scores[order], merged_labels[order]


def sliced_predict(image: np.ndarray, predict_fn: PredictFn, slice_hw: Tuple[int, int], overlap: float = 0.2,
                   batch_size: int = 1, merge: str = 'nmm', match_metric: str = 'ios', match_thr: float = 0.5,
                   nms_iou_thr: float = 0.5, full_image: bool = False) -> InstanceData:
    """Detect on overlapping tiles of ``image`` (H, W, 3) and merge into one set of image-pixel boxes.

    Args:
        image: (H, W, 3) uint8 BGR.
        predict_fn: runs the detector on a list of images (see :data:`PredictFn`).
        slice_hw, overlap: the tiles (see :func:`slice_grid`).
        batch_size: tiles per ``predict_fn`` call.
        merge, match_metric, match_thr, nms_iou_thr: see :func:`merge_predictions`.
        full_image: also run the whole image once (resized by the pipeline as usual) and merge its
            boxes with the tiles' (sahi's ``perform_standard_pred``): large objects that no tile
            holds are then found whole.

    Returns:
        ``InstanceData`` with ``bboxes`` (K, 4) xyxy in pixels of ``image``, ``scores``, ``labels``.
    """
    height, width = image.shape[:2]
    tiles = slice_grid(height, width, slice_hw, overlap)
    crops = [image[y1:y2, x1:x2] for x1, y1, x2, y2 in tiles.tolist()]  # views, one per tile
    preds: List[InstanceData] = []
    for start in range(0, len(crops), batch_size):
        preds.extend(predict_fn(crops[start:start + batch_size]))
    offsets = tiles[:, :2].repeat(1, 2)  # (T, 4) x1, y1, x1, y1
    if full_image:
        preds.extend(predict_fn([image]))
        offsets = torch.cat([offsets, offsets.new_zeros((1, 4))])
    counts = torch.tensor([len(p) for p in preds])
    tile_ids = torch.repeat_interleave(torch.arange(len(preds)), counts)
    bboxes = torch.cat([p.bboxes.reshape(-1, 4).float().cpu() for p in preds])
    bboxes = bboxes + offsets[tile_ids].to(bboxes.dtype)  # every box to image pixels at once
    scores = torch.cat([p.scores.float().cpu() for p in preds])
    labels = torch.cat([p.labels.long().cpu() for p in preds])
    bboxes, scores, labels = merge_predictions(bboxes, scores, labels, tile_ids, merge=merge,
                                               match_metric=match_metric, match_thr=match_thr,
                                               nms_iou_thr=nms_iou_thr)
    bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, width)
    bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, height)
    return InstanceData(bboxes=bboxes, scores=scores, labels=labels)


def check_slice_cfg(slice_cfg: Optional[dict]) -> Optional[dict]:
    """Validate ``DetInferencer``'s ``slice_cfg`` and fill defaults; ``None`` means no slicing.

    Keys: ``slice_hw`` (required, (H, W)), ``overlap`` (0.2), ``merge`` ('nmm'), ``match_metric``
    ('ios'), ``match_thr`` (0.5), ``nms_iou_thr`` (0.5), ``full_image`` (False).
    """
    if slice_cfg is None:
        return None
    defaults = dict(overlap=0.2, merge='nmm', match_metric='ios', match_thr=0.5, nms_iou_thr=0.5,
                    full_image=False)
    unknown = set(slice_cfg) - set(defaults) - {'slice_hw'}
    if unknown:
        raise ValueError(f'slice_cfg: unknown keys {sorted(unknown)}; known: slice_hw, {", ".join(defaults)}')
    if 'slice_hw' not in slice_cfg:
        raise ValueError('slice_cfg needs slice_hw=(height, width), e.g. dict(slice_hw=(512, 512))')
    cfg = {**defaults, **slice_cfg}
    hw: Sequence = cfg['slice_hw']
    if isinstance(hw, int):
        hw = (hw, hw)
    if len(hw) != 2:
        raise ValueError(f'slice_cfg.slice_hw must be (height, width), got {cfg["slice_hw"]!r}')
    cfg['slice_hw'] = (int(hw[0]), int(hw[1]))
    if cfg['merge'] not in MERGE_MODES:
        raise ValueError(f'slice_cfg.merge must be one of {MERGE_MODES}, got {cfg["merge"]!r}')
    if cfg['match_metric'] not in MATCH_METRICS:
        raise ValueError(f'slice_cfg.match_metric must be one of {MATCH_METRICS}, got {cfg["match_metric"]!r}')
    slice_grid(1, 1, cfg['slice_hw'], cfg['overlap'])  # raises on a bad size / overlap
    return cfg
