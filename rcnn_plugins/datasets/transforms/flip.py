"""``RandomFlip``: mmcv's RandomFlip registered in the rcnn_plugins scope, with our box flip.

For an image of width ``w`` and height ``h`` (xyxy boxes, widths ``x2 - x1``):

- horizontal: ``x1' = w - x2``, ``x2' = w - x1``
- vertical:   ``y1' = h - y2``, ``y2' = h - y1``
- diagonal:   both (a 180 degree rotation)

so flipping twice in the same direction gives back the input exactly; precomputed
``proposals`` (from ``LoadProposals``) are flipped the same way. Sets ``flip`` (bool) and
``flip_direction`` (the direction, or None when not flipped).
"""
from typing import Tuple

import numpy as np
from mmcv.transforms import RandomFlip as MMCVRandomFlip

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomFlip(MMCVRandomFlip):
    """Flip ``img``, ``gt_bboxes`` and ``proposals`` with probability ``prob``.

    Args (as mmcv):
        prob: probability to flip; with a list of directions, a float is split evenly among
            them, a list gives one probability per direction.
        direction: ``'horizontal'``, ``'vertical'``, ``'diagonal'`` or a list of them.
    """

    def _flip(self, results: dict) -> None:
        super()._flip(results)  # image, gt_bboxes, keypoints, seg map
        if results.get('proposals') is not None:
            results['proposals'] = self._flip_bbox(results['proposals'], results['img'].shape[:2],
                                                   results['flip_direction'])

    def _flip_bbox(self, bboxes: np.ndarray, img_shape: Tuple[int, int], direction: str) -> np.ndarray:
        """(N, 4) xyxy boxes of an (h, w) image -> flipped boxes, same dtype."""
        h, w = img_shape[:2]
        x1, y1, x2, y2 = bboxes[:, 0], bboxes[:, 1], bboxes[:, 2], bboxes[:, 3]
        if direction == 'horizontal':
            flipped = (w - x2, y1, w - x1, y2)
        elif direction == 'vertical':
            flipped = (x1, h - y2, x2, h - y1)
        elif direction == 'diagonal':
            flipped = (w - x2, h - y2, w - x1, h - y1)
        else:
            raise ValueError(f"flip direction must be 'horizontal', 'vertical' or 'diagonal', got {direction!r}")
        return np.stack(flipped, axis=1).astype(bboxes.dtype, copy=False)
