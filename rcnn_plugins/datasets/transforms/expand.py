"""``Expand``: MMDetection's zoom-out (SSD): the image placed on a larger canvas of ``mean``.

With probability ``prob`` a ratio ``r`` is drawn uniformly from ``ratio_range``, the canvas is
``(int(h * r), int(w * r))`` filled with ``mean`` (given RGB and reversed to BGR when ``to_rgb``,
as MMDetection), the image goes at a random integer ``(left, top)`` and every box moves by it.
Boxes stay inside the canvas, so none is dropped.
"""
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from ...registry import TRANSFORMS
from .instance_ops import refuse_proposals, translate_boxes


@TRANSFORMS.register_module()
class Expand(BaseTransform):
    """Args: ``mean`` (canvas colour), ``to_rgb`` (reverse ``mean``), ``ratio_range`` (min, max),
    ``seg_ignore_label`` (canvas value of a segmentation map), ``prob``."""

    def __init__(self, mean: Sequence[float] = (0, 0, 0), to_rgb: bool = True,
                 ratio_range: Sequence[float] = (1, 4), seg_ignore_label: int = None, prob: float = 0.5) -> None:
        if len(ratio_range) != 2 or not 1 <= ratio_range[0] <= ratio_range[1]:
            raise ValueError(f'Expand: ratio_range must be (min, max) with 1 <= min <= max, got {ratio_range!r}')
        self.to_rgb = to_rgb
        self.ratio_range = ratio_range
        self.mean = mean[::-1] if to_rgb else mean
        self.min_ratio, self.max_ratio = ratio_range
        self.seg_ignore_label = seg_ignore_label
        self.prob = prob

    @cache_randomness
    def _random_prob(self) -> float:
        return np.random.uniform(0, 1)

    @cache_randomness
    def _random_ratio(self) -> float:
        return np.random.uniform(self.min_ratio, self.max_ratio)

    @cache_randomness
    def _random_left_top(self, ratio: float, h: int, w: int) -> Tuple[int, int]:
        return int(np.random.uniform(0, w * ratio - w)), int(np.random.uniform(0, h * ratio - h))

    def transform(self, results: dict) -> dict:
        if self._random_prob() > self.prob:
            return results
        refuse_proposals(results, 'Expand')
        img = results['img']
        h, w, c = img.shape
        ratio = self._random_ratio()
        canvas = np.empty((int(h * ratio), int(w * ratio), c), img.dtype)
        canvas[...] = np.asarray(self.mean, dtype=img.dtype)
        left, top = self._random_left_top(ratio, h, w)
        canvas[top:top + h, left:left + w] = img
        results['img'] = canvas
        results['img_shape'] = canvas.shape[:2]
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'] = translate_boxes(results['gt_bboxes'], left, top)
        if results.get('gt_seg_map') is not None:
            seg = results['gt_seg_map']
            out = np.full(canvas.shape[:2], self.seg_ignore_label, dtype=seg.dtype)
            out[top:top + h, left:left + w] = seg
            results['gt_seg_map'] = out
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mean={self.mean}, to_rgb={self.to_rgb}, ratio_range={self.ratio_range}, '
                f'seg_ignore_label={self.seg_ignore_label}, prob={self.prob})')
