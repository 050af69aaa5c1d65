"""Box bookkeeping shared by the geometric transforms (no registered class here).

Boxes are ``gt_bboxes`` (N, 4) float32 numpy xyxy pixels with ``gt_bboxes_labels`` (N,) int64 and
``gt_ignore_flags`` (N,) bool aligned to them (``LoadAnnotations``); a transform that drops boxes
drops the same rows from all three, so ignore flags stay with their boxes.
"""
from typing import Tuple

import numpy as np

INSTANCE_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags')


def select_instances(results: dict, keep: np.ndarray) -> None:
    """Keep rows ``keep`` (bool (N,) or indices) of every per-instance key present."""
    for key in INSTANCE_KEYS:
        if results.get(key) is not None:
            results[key] = results[key][keep]


def translate_boxes(boxes: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """(N, 4) xyxy moved by (dx, dy) pixels, float32."""
    return (boxes + np.array([dx, dy, dx, dy], dtype=np.float32)).astype(np.float32)


def clip_boxes(boxes: np.ndarray, img_shape: Tuple[int, int]) -> np.ndarray:
    """(N, 4) xyxy clipped to an (h, w) image."""
    h, w = img_shape[:2]
    boxes = boxes.copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return boxes


def inside(boxes: np.ndarray, img_shape: Tuple[int, int]) -> np.ndarray:
    """(N,) bool: the box overlaps the (h, w) image with positive extent on each axis
    (MMDetection's ``is_inside``: ``x1 < w, y1 < h, x2 > 0, y2 > 0``). After clipping, a box that
    left the image has ``x1 == x2`` on a border and fails this."""
    h, w = img_shape[:2]
    return (boxes[:, 0] < w) & (boxes[:, 1] < h) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def refuse_proposals(results: dict, name: str) -> None:
    """Precomputed proposals would need the same crop / shift; refuse rather than misalign them."""
    if results.get('proposals') is not None:
        raise NotImplementedError(f'{name} does not move precomputed proposals (LoadProposals): remove it from '
                                  'a pipeline that loads proposals (docs/MMDET_DIFFERENCES.md)')
