"""``RandomCrop``: MMDetection's random crop of the image and its boxes.

The crop size comes from ``crop_type`` (``crop_size`` is ``(w, h)`` for 'absolute' / 'relative',
``(min, max)`` edge for 'absolute_range', minimum ratios for 'relative_range'), the offset is
uniform over the positions that fit. Boxes are shifted by the offset and (``bbox_clip_border``)
clipped to the crop; a box that no longer overlaps the crop is dropped with its label and ignore
flag. If no box is left and ``allow_negative_crop`` is False the transform returns None (the
dataset then draws another image, as MMDetection's). An image smaller than the crop is kept whole
along that axis.
"""
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from ...registry import TRANSFORMS
from .instance_ops import clip_boxes, inside, refuse_proposals, select_instances, translate_boxes

CROP_TYPES = ('relative_range', 'relative', 'absolute', 'absolute_range')


@TRANSFORMS.register_module()
class RandomCrop(BaseTransform):
    """Random crop; sets ``img``, ``img_shape`` (h, w), ``homography_matrix`` and filters the boxes.

    Args:
        crop_size: see the module docstring.
        crop_type: one of ``'relative_range'``, ``'relative'``, ``'absolute'``, ``'absolute_range'``.
        allow_negative_crop: keep a crop that holds no box (else return None).
        recompute_bbox: MMDetection recomputes the boxes from the cropped ``gt_masks`` when the
            results hold masks and does nothing otherwise; no masks are loaded here, so it is a
            no-op (accepted for MMDetection's LSJ configs; results with masks are refused).
        bbox_clip_border: clip the boxes to the crop.
    """

    def __init__(self, crop_size: tuple, crop_type: str = 'absolute', allow_negative_crop: bool = False,
                 recompute_bbox: bool = False, bbox_clip_border: bool = True) -> None:
        if crop_type not in CROP_TYPES:
            raise ValueError(f'RandomCrop: crop_type must be one of {CROP_TYPES}, got {crop_type!r}')
        if len(crop_size) != 2:
            raise ValueError(f'RandomCrop: crop_size must have 2 values, got {crop_size!r}')
        if crop_type in ('absolute', 'absolute_range'):
            if not all(isinstance(s, int) and s > 0 for s in crop_size):
                raise ValueError(f'RandomCrop: crop_type={crop_type!r} needs positive int crop_size, got {crop_size!r}')
            if crop_type == 'absolute_range' and crop_size[0] > crop_size[1]:
                raise ValueError(f'RandomCrop: absolute_range needs crop_size[0] <= crop_size[1], got {crop_size!r}')
        elif not all(0 < s <= 1 for s in crop_size):
            raise ValueError(f'RandomCrop: crop_type={crop_type!r} needs ratios in (0, 1], got {crop_size!r}')
        self.crop_size = crop_size
        self.crop_type = crop_type
        self.allow_negative_crop = allow_negative_crop
        self.recompute_bbox = recompute_bbox
        self.bbox_clip_border = bbox_clip_border

    @cache_randomness
    def _get_crop_size(self, image_size: Tuple[int, int]) -> Tuple[int, int]:
        """(h, w) of the image -> (crop_h, crop_w) pixels."""
        h, w = image_size
        if self.crop_type == 'absolute':
            return min(self.crop_size[1], h), min(self.crop_size[0], w)
        if self.crop_type == 'absolute_range':
            crop_h = np.random.randint(min(h, self.crop_size[0]), min(h, self.crop_size[1]) + 1)
            crop_w = np.random.randint(min(w, self.crop_size[0]), min(w, self.crop_size[1]) + 1)
            return crop_h, crop_w
        if self.crop_type == 'relative':
            crop_w, crop_h = self.crop_size
        else:  # relative_range: ratios uniform in [crop_size, 1]; crop_size is (h, w) ratios here
            ratios = np.asarray(self.crop_size, dtype=np.float32)
            crop_h, crop_w = ratios + np.random.rand(2) * (1 - ratios)
        return int(h * crop_h + 0.5), int(w * crop_w + 0.5)

    @cache_randomness
    def _rand_offset(self, margin: Tuple[int, int]) -> Tuple[int, int]:
        return np.random.randint(0, margin[0] + 1), np.random.randint(0, margin[1] + 1)

    def transform(self, results: dict) -> Optional[dict]:
        refuse_proposals(results, 'RandomCrop')
        if self.recompute_bbox and results.get('gt_masks') is not None:
            raise NotImplementedError('RandomCrop(recompute_bbox=True) with gt_masks: masks are not supported '
                                      '(docs/MMDET_DIFFERENCES.md); without masks it is a no-op, as in MMDetection')
        img = results['img']
        crop_h, crop_w = self._get_crop_size(img.shape[:2])
        off_h, off_w = self._rand_offset((max(img.shape[0] - crop_h, 0), max(img.shape[1] - crop_w, 0)))
        shift = np.array([[1, 0, -off_w], [0, 1, -off_h], [0, 0, 1]], dtype=np.float32)
        previous = results.get('homography_matrix')
        results['homography_matrix'] = shift if previous is None else shift @ previous
        img = img[off_h:off_h + crop_h, off_w:off_w + crop_w, ...]
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        if results.get('gt_bboxes') is not None:
            boxes = translate_boxes(results['gt_bboxes'], -off_w, -off_h)
            if self.bbox_clip_border:
                boxes = clip_boxes(boxes, img.shape[:2])
            keep = inside(boxes, img.shape[:2])
            if not keep.any() and not self.allow_negative_crop:
                return None
            results['gt_bboxes'] = boxes
            select_instances(results, keep)
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = results['gt_seg_map'][off_h:off_h + crop_h, off_w:off_w + crop_w]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(crop_size={self.crop_size}, crop_type={self.crop_type}, '
                f'allow_negative_crop={self.allow_negative_crop}, recompute_bbox={self.recompute_bbox}, '
                f'bbox_clip_border={self.bbox_clip_border})')
