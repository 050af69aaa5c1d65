"""``FilterAnnotations``: MMDetection's filter of boxes too small to train on.

A box is kept when its width > ``min_gt_bbox_wh[0]`` and height > ``min_gt_bbox_wh[1]``
(strictly, as MMDetection); its label and ignore flag go with it. When no box is left and
``keep_empty`` is True the transform returns None (MMDetection's naming: the dataset then draws
another image); an image that had no box to begin with passes through.
"""
from typing import Optional, Tuple

from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS
from .instance_ops import select_instances


@TRANSFORMS.register_module()
class FilterAnnotations(BaseTransform):
    """Drop boxes with width or height <= ``min_gt_bbox_wh`` pixels.

    Args:
        min_gt_bbox_wh: (min width, min height) in pixels.
        min_gt_mask_area, by_mask: mask filtering (masks are not supported: ``by_mask`` must be False).
        by_box: filter by box size (must be True here).
        keep_empty: return None when every box was filtered out.
    """

    def __init__(self, min_gt_bbox_wh: Tuple[float, float] = (1, 1), min_gt_mask_area: int = 1,
                 by_box: bool = True, by_mask: bool = False, keep_empty: bool = True) -> None:
        if by_mask:
            raise NotImplementedError('FilterAnnotations(by_mask=True) filters by mask area; masks are not '
                                      'supported (docs/MMDET_DIFFERENCES.md); use by_box=True')
        if not by_box:
            raise ValueError('FilterAnnotations: by_box=False and by_mask=False filters nothing; set by_box=True')
        self.min_gt_bbox_wh = min_gt_bbox_wh
        self.min_gt_mask_area = min_gt_mask_area
        self.by_box = by_box
        self.by_mask = by_mask
        self.keep_empty = keep_empty

    def transform(self, results: dict) -> Optional[dict]:
        if 'gt_bboxes' not in results:
            raise KeyError("FilterAnnotations needs 'gt_bboxes': put it after LoadAnnotations")
        boxes = results['gt_bboxes']
        if boxes.shape[0] == 0:
            return results
        keep = ((boxes[:, 2] - boxes[:, 0] > self.min_gt_bbox_wh[0])
                & (boxes[:, 3] - boxes[:, 1] > self.min_gt_bbox_wh[1]))
        if not keep.any() and self.keep_empty:
            return None
        select_instances(results, keep)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(min_gt_bbox_wh={self.min_gt_bbox_wh}, keep_empty={self.keep_empty})'
