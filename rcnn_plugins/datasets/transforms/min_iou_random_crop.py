"""``MinIoURandomCrop``: MMDetection's SSD-style crop whose IoU with every box is at least a
threshold drawn from ``min_ious``.

Each call draws a mode from ``(1, *min_ious, 0)``: 1 keeps the image; otherwise up to 50 patches
are tried (sides uniform in ``[min_crop_size, 1]`` of the image, aspect ``h / w`` in [0.5, 2], a
random integer position); a patch is taken when every box has IoU >= the threshold with it and at
least one box centre lies strictly inside it. Boxes whose centre is inside are kept (shifted,
``bbox_clip_border``: clipped), the others dropped with their labels and ignore flags. After 50
failed tries a new mode is drawn, as MMDetection.
"""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from ...registry import TRANSFORMS
from .instance_ops import clip_boxes, refuse_proposals, select_instances, translate_boxes


def _iou_with_patch(patch: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy patch (4,) with boxes (N, 4) -> (N,)."""
    w = (np.minimum(patch[2], boxes[:, 2]) - np.maximum(patch[0], boxes[:, 0])).clip(min=0)
    h = (np.minimum(patch[3], boxes[:, 3]) - np.maximum(patch[1], boxes[:, 1])).clip(min=0)
    inter = w * h
    union = (patch[2] - patch[0]) * (patch[3] - patch[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(union - inter, np.finfo(np.float32).eps)


@TRANSFORMS.register_module()
class MinIoURandomCrop(BaseTransform):
    """Args: ``min_ious`` (IoU thresholds to draw from), ``min_crop_size`` (minimum patch side as a
    fraction of the image side), ``bbox_clip_border`` (clip kept boxes to the patch)."""

    def __init__(self, min_ious: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size: float = 0.3,
                 bbox_clip_border: bool = True) -> None:
        if not 0 < min_crop_size <= 1:
            raise ValueError(f'MinIoURandomCrop: min_crop_size must be in (0, 1], got {min_crop_size}')
        self.min_ious = min_ious
        self.sample_mode = (1, *min_ious, 0)
        self.min_crop_size = min_crop_size
        self.bbox_clip_border = bbox_clip_border

    @cache_randomness
    def _random_mode(self):
        return np.random.choice(self.sample_mode)

    def transform(self, results: dict) -> dict:
        if 'gt_bboxes' not in results:
            raise KeyError("MinIoURandomCrop needs 'gt_bboxes': put it after LoadAnnotations")
        refuse_proposals(results, 'MinIoURandomCrop')
        img, boxes = results['img'], results['gt_bboxes']
        h, w = img.shape[:2]
        while True:
            min_iou = self._random_mode()
            if min_iou == 1:
                return results
            for _ in range(50):
                new_w = np.random.uniform(self.min_crop_size * w, w)
                new_h = np.random.uniform(self.min_crop_size * h, h)
                if new_h / new_w < 0.5 or new_h / new_w > 2:
                    continue
                left, top = np.random.uniform(w - new_w), np.random.uniform(h - new_h)
                patch = np.array((int(left), int(top), int(left + new_w), int(top + new_h)))
                if patch[2] == patch[0] or patch[3] == patch[1]:  # no line or point crops
                    continue
                if len(boxes) > 0:
                    if _iou_with_patch(patch.astype(np.float32), boxes).min() < min_iou:
                        continue
                    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
                    centre_in = (cx > patch[0]) & (cy > patch[1]) & (cx < patch[2]) & (cy < patch[3])
                    if not centre_in.any():
                        continue
                    kept = translate_boxes(boxes[centre_in], -patch[0], -patch[1])
                    if self.bbox_clip_border:
                        kept = clip_boxes(kept, (patch[3] - patch[1], patch[2] - patch[0]))
                    select_instances(results, centre_in)
                    results['gt_bboxes'] = kept
                img = img[patch[1]:patch[3], patch[0]:patch[2]]
                results['img'] = img
                results['img_shape'] = img.shape[:2]
                if results.get('gt_seg_map') is not None:
                    results['gt_seg_map'] = results['gt_seg_map'][patch[1]:patch[3], patch[0]:patch[2]]
                return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(min_ious={self.min_ious}, min_crop_size={self.min_crop_size}, '
                f'bbox_clip_border={self.bbox_clip_border})')
