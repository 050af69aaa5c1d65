"""``bbox_overlaps``: numpy IoU / IoF of two box sets, MMDetection's
``mmdet.evaluation.functional.bbox_overlaps`` (same signature and numbers, vectorised)."""
import numpy as np

from ...structures.errors import MMDetArgumentError


def bbox_overlaps(bboxes1: np.ndarray, bboxes2: np.ndarray, mode: str = 'iou', eps: float = 1e-6,
                  use_legacy_coordinate: bool = False) -> np.ndarray:
    """(n, 4) x (k, 4) xyxy boxes -> (n, k) float32 overlaps.

    Args:
        mode: 'iou' (intersection over union) or 'iof' (intersection over the area of the
            ``bboxes1`` box: "foreground").
        eps: floor of the denominator.
        use_legacy_coordinate: boxes are inclusive pixel ranges, width = x2 - x1 + 1 (MMDetection
            1.x and the VOC devkit).
    """
    if mode not in ('iou', 'iof'):
        raise MMDetArgumentError(f"bbox_overlaps: mode must be 'iou' or 'iof', got {mode!r}")
    extra = 1.0 if use_legacy_coordinate else 0.0
    b1 = np.asarray(bboxes1, dtype=np.float32).reshape(-1, 4)
    b2 = np.asarray(bboxes2, dtype=np.float32).reshape(-1, 4)
    if b1.shape[0] * b2.shape[0] == 0:
        return np.zeros((b1.shape[0], b2.shape[0]), dtype=np.float32)
    area1 = (b1[:, 2] - b1[:, 0] + extra) * (b1[:, 3] - b1[:, 1] + extra)
    area2 = (b2[:, 2] - b2[:, 0] + extra) * (b2[:, 3] - b2[:, 1] + extra)
    wh = np.maximum(np.minimum(b1[:, None, 2:], b2[None, :, 2:]) - np.maximum(b1[:, None, :2], b2[None, :, :2])
                    + extra, 0)
    overlap = wh[..., 0] * wh[..., 1]
    denom = area1[:, None] + area2[None, :] - overlap if mode == 'iou' else np.broadcast_to(area1[:, None],
                                                                                         overlap.shape)
    return (overlap / np.maximum(denom, eps)).astype(np.float32)
