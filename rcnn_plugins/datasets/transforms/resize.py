"""``Resize``: mmcv's Resize with MMDetection's box handling (float32 numpy boxes, clipping).

Semantics (mmcv / MMDetection): with ``keep_ratio=True`` the image is rescaled by one factor so
that its long edge is <= max(scale) and its short edge <= min(scale) (``mmcv.imrescale``);
otherwise it is resized to exactly ``scale = (w, h)``. ``scale_factor`` is then
``(new_w / old_w, new_h / old_h)`` from the sizes actually produced (rounding makes the two
differ slightly with keep_ratio), and ``gt_bboxes`` are multiplied by exactly those factors, so
``boxes / scale_factor`` maps back to the input image. ``scale_factor`` always relates to the
image given to this transform (a second Resize does not compose with the first), as MMDetection.
Precomputed ``proposals`` (from ``LoadProposals``) are scaled and clipped exactly as ``gt_bboxes``.

``backend='torch'`` resizes as torchvision's detection transform (``GeneralizedRCNNTransform``)
does: the image in float32, ``torch.nn.functional.interpolate`` bilinear (``align_corners=False``,
no antialiasing), new sizes ``floor(edge * factor)`` rather than rounded, and the float32 result is
kept (not rounded back to uint8). Used by the configs that reproduce torchvision's models.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import Resize as MMCVResize

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class Resize(MMCVResize):
    """Resize ``img``, ``gt_bboxes`` and ``proposals``; set ``img_shape`` (h, w), ``scale``,
    ``scale_factor`` (w, h), ``keep_ratio``.

    Args (as mmcv):
        scale: target ``(w, h)``, or an int for a square; with keep_ratio the (long, short) edge limits.
        scale_factor: used when ``scale`` is None: float or ``(w_factor, h_factor)``.
        keep_ratio: keep the aspect ratio (see module docstring). Defaults to False, as
            MMDetection; configs normally set ``keep_ratio=True``.
        clip_object_border: clip the resized boxes to the new image.
        backend: ``'cv2'``, ``'pillow'`` or ``'torch'`` (torchvision's resize; see the module docstring).
        interpolation: ``'nearest'``, ``'bilinear'``, ``'bicubic'``, ``'area'``, ``'lanczos'``
            (``'torch'``: only ``'bilinear'``).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.backend not in ('cv2', 'pillow', 'torch'):
            raise ValueError(f"Resize: backend must be 'cv2', 'pillow' or 'torch', got {self.backend!r}")
        if self.backend == 'torch' and self.interpolation != 'bilinear':
            raise ValueError(f"Resize: backend='torch' reproduces torchvision's bilinear resize; set "
                             f"interpolation='bilinear' (got {self.interpolation!r})")

    def _resize_img(self, results: dict) -> None:
        if self.backend != 'torch' or results.get('img') is None:
            return super()._resize_img(results)
        img = results['img']
        h, w = img.shape[:2]
        if self.keep_ratio:
            # torchvision: factor = min(min_size / short edge, max_size / long edge), sizes floored.
            factor = min(max(results['scale']) / max(h, w), min(results['scale']) / min(h, w))
            new_h, new_w = math.floor(h * factor), math.floor(w * factor)
        else:
            new_w, new_h = results['scale']
        x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))
        x = x.reshape(h, w, -1).permute(2, 0, 1)[None]
        x = F.interpolate(x, size=(new_h, new_w), mode='bilinear', align_corners=False)
        out = x[0].permute(1, 2, 0).numpy()
        results['img'] = out if img.ndim == 3 else out[..., 0]
        results['img_shape'] = (new_h, new_w)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = self.keep_ratio

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
