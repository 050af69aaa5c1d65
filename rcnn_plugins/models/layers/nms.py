"""Non-maximum suppression with MMDetection's ``batched_nms`` / ``multiclass_nms`` interface.

``nms_cfg`` is the config dict MMDetection uses, e.g. ``dict(type='nms', iou_threshold=0.7)``,
optionally with ``max_num``, ``class_agnostic`` and ``split_thr`` (accepted and unused: the
class-wise strategies here need no split). Types:

- ``'nms'``: ``torchvision.ops.nms`` / ``batched_nms``;
- ``'soft_nms'``: :mod:`.soft_nms` (``iou_threshold=0.3, sigma=0.5, min_score=1e-3,
  method='linear'|'gaussian'|'naive'``, mmcv's defaults); the dets carry the decayed scores.

:func:`check_nms_cfg` validates a config without running it; detectors call it on every ``nms``
of their ``train_cfg`` / ``test_cfg`` when built, so a bad NMS config fails at build time.
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torchvision.ops import batched_nms as tv_batched_nms
from torchvision.ops import nms as tv_nms

from .soft_nms import SOFT_NMS_METHODS, batched_soft_nms

_COMMON_KEYS = {'type', 'iou_threshold', 'max_num', 'class_agnostic', 'split_thr', 'offset'}
_NMS_KEYS = {'nms': _COMMON_KEYS, 'soft_nms': _COMMON_KEYS | {'sigma', 'min_score', 'method'}}


def check_nms_cfg(nms_cfg, where: str = 'nms_cfg') -> None:
    """Raise a clear error for an NMS config that :func:`batched_nms` would refuse.

    Args:
        nms_cfg: ``None`` or a dict such as ``dict(type='soft_nms', iou_threshold=0.3)``.
        where: the config path named in the error (e.g. ``'test_cfg.rcnn.nms'``).
    """
    if nms_cfg is None:
        return
    if not isinstance(nms_cfg, dict):
        raise TypeError(f'{where}: an NMS config must be a dict such as dict(type="nms", iou_threshold=0.5), '
                        f'got {nms_cfg!r}')
    nms_type = nms_cfg.get('type', 'nms')
    if nms_type not in _NMS_KEYS:
        raise NotImplementedError(f'{where}: NMS type {nms_type!r} is not available; use one of '
                                  f"{sorted(_NMS_KEYS)} (see docs/MMDET_DIFFERENCES.md)")
    unknown = set(nms_cfg) - _NMS_KEYS[nms_type]
    if unknown:
        raise ValueError(f'{where}: unknown keys {sorted(unknown)} for type {nms_type!r}; '
                         f'supported: {sorted(_NMS_KEYS[nms_type])}')
    if nms_cfg.get('offset', 0) != 0:
        raise NotImplementedError(f'{where}: offset=1 (legacy +1 box widths) is not supported; use offset=0')
    if nms_type == 'nms' and 'iou_threshold' not in nms_cfg:
        raise ValueError(f"{where}: type 'nms' needs 'iou_threshold', got {nms_cfg!r}")
    if nms_type == 'soft_nms' and nms_cfg.get('method', 'linear') not in SOFT_NMS_METHODS:
        raise ValueError(f"{where}: soft_nms method must be one of {SOFT_NMS_METHODS}, "
                         f"got {nms_cfg['method']!r}")


def check_nms_cfgs(cfg, where: str) -> None:
    """:func:`check_nms_cfg` on every ``nms`` key found anywhere inside a train/test config."""
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'nms':
                check_nms_cfg(value, f'{where}.{key}')
            else:
                check_nms_cfgs(value, f'{where}.{key}')
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            check_nms_cfgs(value, f'{where}[{i}]')


def parse_nms_cfg(nms_cfg: dict, class_agnostic: bool = False) -> Tuple[float, int, bool]:
    """-> (iou_threshold, max_num, class_agnostic) of a type='nms' config."""
    check_nms_cfg(nms_cfg)
    return (float(nms_cfg['iou_threshold']), int(nms_cfg.get('max_num', -1)),
            bool(nms_cfg.get('class_agnostic', class_agnostic)))


def class_wise_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, nms_cfg: dict,
                   max_coordinate: Tensor) -> Tuple[Tensor, Tensor]:
    """Indices (K,) of the boxes kept by NMS done separately per ``idxs``, by descending score,
    at most ``nms_cfg['max_num']``, and their scores (K,): the input scores, or for soft-NMS the
    decayed ones (callers must report these, not ``scores[keep]``).

    Eagerly this is :func:`batched_nms` (torchvision's, which picks its per-class strategy by
    size). In graph capture (ONNX tracing, ``torch.export``) it is torchvision's coordinate-offset
    strategy with a known bound: each category's boxes shifted by ``idx * (max_coordinate + 1)``,
    then one NMS, so no reduction over a possibly empty set and no size-dependent branch enters
    the graph. ``max_coordinate``: a 0-d tensor bounding every coordinate (clipped boxes: the
    image's longer side).
    """
    if not (torch.jit.is_tracing() or torch.compiler.is_exporting()):
        dets, keep = batched_nms(boxes, scores, idxs, nms_cfg)
        return keep, dets[:, -1].to(scores.dtype)
    if nms_cfg.get('type', 'nms') != 'nms':
        raise NotImplementedError(f"export: NMS type {nms_cfg.get('type')!r} has no graph form here; "
                                  "export with type='nms'")
    iou_threshold, max_num, class_agnostic = parse_nms_cfg(nms_cfg)
    if not class_agnostic:
        boxes = boxes + (idxs.to(boxes.dtype) * (max_coordinate + 1))[:, None]
    keep = tv_nms(boxes, scores, iou_threshold)
    keep = keep[:max_num] if max_num > 0 else keep
    return keep, scores[keep]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, nms_cfg: Optional[dict],
                class_agnostic: bool = False) -> Tuple[Tensor, Tensor]:
    """NMS done independently per category ``idxs`` (or across all, if class-agnostic).

    Args:
        boxes: (N, 4) xyxy.
        scores: (N,).
        idxs: (N,) category of each box; boxes of different categories never suppress each other.
        nms_cfg: e.g. ``dict(type='nms', iou_threshold=0.7, max_num=1000)`` or
            ``dict(type='soft_nms', iou_threshold=0.3, min_score=0.05, method='gaussian', sigma=0.5)``;
            ``None``: no NMS, just sort by score. ``nms_cfg['class_agnostic']`` overrides the argument.
        class_agnostic: one NMS over all boxes, ignoring ``idxs``.

    Returns:
        dets: (K, 5) kept boxes with their score as the last column (soft-NMS: the decayed
            score), by descending score.
        keep: (K,) indices of the kept boxes into the inputs.
    """
    if boxes.dim() != 2 or boxes.size(-1) != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f'batched_nms: need boxes (N, 4) and scores (N,), got {tuple(boxes.shape)} and '
                         f'{tuple(scores.shape)}')
    if nms_cfg is None:
        scores, keep = scores.sort(descending=True)
        return torch.cat([boxes[keep], scores[:, None]], dim=-1), keep
    if nms_cfg.get('type', 'nms') == 'soft_nms':
        check_nms_cfg(nms_cfg)
        groups = torch.zeros_like(idxs) if nms_cfg.get('class_agnostic', class_agnostic) else idxs
        return batched_soft_nms(boxes, scores, groups, float(nms_cfg.get('iou_threshold', 0.3)),
                                float(nms_cfg.get('sigma', 0.5)), float(nms_cfg.get('min_score', 1e-3)),
                                nms_cfg.get('method', 'linear'), int(nms_cfg.get('max_num', -1)))
    iou_threshold, max_num, class_agnostic = parse_nms_cfg(nms_cfg, class_agnostic)
    # Suppress in float32: torchvision's CPU kernel has no half version, and class-wise offsets
    # (class id x max coordinate) would overflow float16.
    if class_agnostic:
        keep = tv_nms(boxes.float(), scores.float(), iou_threshold)
    else:
        keep = tv_batched_nms(boxes.float(), scores.float(), idxs, iou_threshold)
    if max_num > 0:
        keep = keep[:max_num]
    return torch.cat([boxes[keep], scores[keep, None].to(boxes.dtype)], dim=-1), keep


def multiclass_nms(multi_bboxes: Tensor, multi_scores: Tensor, score_thr: float, nms_cfg: Optional[dict],
                   max_num: int = -1, score_factors: Optional[Tensor] = None,
                   return_inds: bool = False) -> Union[Tuple[Tensor, Tensor], Tuple[Tensor, Tensor, Tensor]]:
    """Per-class score threshold + NMS over the N x C (box, class) candidates.

    Args:
        multi_bboxes: (N, C * 4) class-specific boxes, or (N, 4) shared by all classes.
        multi_scores: (N, C + 1) class probabilities; the last column (background) is dropped.
        score_thr: candidates with score <= this are discarded (before ``score_factors``).
        nms_cfg: see :func:`batched_nms`.
        max_num: keep at most this many detections (highest scores); <= 0 keeps all.
        score_factors: (N,) multiplied into the scores after thresholding (e.g. centerness).
        return_inds: also return the kept candidates' indices into the flattened (N * C) grid.

    Returns:
        dets (K, 5) [x1, y1, x2, y2, score], labels (K,) long in [0, C)[, inds (K,)].
    """
    num_boxes, num_classes = multi_scores.size(0), multi_scores.size(1) - 1
    if multi_bboxes.size(0) != num_boxes or multi_bboxes.size(1) not in (4, 4 * num_classes):
        raise ValueError(f'multiclass_nms: need multi_bboxes (N, 4) or (N, {4 * num_classes}) for multi_scores '
                         f'{tuple(multi_scores.shape)}, got {tuple(multi_bboxes.shape)}')
    if multi_bboxes.size(1) > 4:
        bboxes = multi_bboxes.reshape(num_boxes, num_classes, 4)
    else:
        bboxes = multi_bboxes[:, None].expand(num_boxes, num_classes, 4)
    scores = multi_scores[:, :-1]
    labels = torch.arange(num_classes, dtype=torch.long, device=scores.device).expand(num_boxes, num_classes)

    bboxes = bboxes.reshape(-1, 4)
    scores = scores.reshape(-1)
    labels = labels.reshape(-1)
    valid = scores > score_thr
    if score_factors is not None:
        scores = scores * score_factors.reshape(-1, 1).expand(num_boxes, num_classes).reshape(-1)
    inds = valid.nonzero().reshape(-1)
    bboxes, scores, labels = bboxes[inds], scores[inds], labels[inds]

    if bboxes.numel() == 0:
        dets = torch.cat([bboxes, scores[:, None]], dim=-1)
        return (dets, labels, inds) if return_inds else (dets, labels)
    dets, keep = batched_nms(bboxes, scores, labels, nms_cfg)
    if max_num > 0:
        dets, keep = dets[:max_num], keep[:max_num]
    return (dets, labels[keep], inds[keep]) if return_inds else (dets, labels[keep])
