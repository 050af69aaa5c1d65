"""``Resize``: mmcv's Resize with MMDetection's box handling (float32 numpy boxes, clipping).

Semantics (mmcv / MMDetection): with ``keep_ratio=True`` the image is rescaled by one factor so
that its long edge is <= max(scale) and its short edge <= min(scale) (``mmcv.imrescale``);
otherwise it is resized to exactly ``scale = (w, h)``. ``scale_factor`` is then
``(new_w / old_w, new_h / old_h)`` from the sizes actually produced (rounding makes the two
differ slightly with keep_ratio), and ``gt_bboxes`` are multiplied by exactly those factors, so
``boxes / scale_factor`` maps back to the input image. ``scale_factor`` always relates to the
image given to this transform (a second Resize does not compose with the first), as MMDetection.
Precomputed ``proposals`` (from ``LoadProposals``) are scaled and clipped exactly as ``gt_bboxes``.
"""
import numpy as np
from mmcv.transforms import Resize as MMCVResize

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class Resize(MMCVResize):
    """Resize ``img``, ``gt_bboxes`` and ``proposals``; set ``img_shape`` (h, w), ``scale``, ``scale_factor`` (w, h), ``keep_ratio``.

    Args (as mmcv):
        scale: target ``(w, h)``, or an int for a square; with keep_ratio the (long, short) edge limits.
        scale_factor: used when ``scale`` is None: float or ``(w_factor, h_factor)``.
        keep_ratio: keep the aspect ratio (see module docstring). Defaults to False, as
            MMDetection; configs normally set ``keep_ratio=True``.
        clip_object_border: clip the resized boxes to the new image.
        backend: ``'cv2'`` or ``'pillow'``.
        interpolation: ``'nearest'``, ``'bilinear'``, ``'bicubic'``, ``'area'``, ``'lanczos'``.
    """

    def _resize_bboxes(self, results: dict) -> None:
        w_scale, h_scale = results['scale_factor']
        factors = np.array([w_scale, h_scale, w_scale, h_scale], dtype=np.float32)
        h, w = results['img_shape'][:2]
        for key in ('gt_bboxes', 'proposals'):
            bboxes = results.get(key)
            if bboxes is None:
                continue
            bboxes = (bboxes * factors).astype(np.float32)
            if self.clip_object_border:
                bboxes[:, 0::2] = bboxes[:, 0::2].clip(0, w)
                bboxes[:, 1::2] = bboxes[:, 1::2].clip(0, h)
            results[key] = bboxes
