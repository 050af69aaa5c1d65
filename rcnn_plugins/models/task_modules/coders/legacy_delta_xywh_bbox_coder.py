"""``LegacyDeltaXYWHBBoxCoder``: MMDetection 1.x's (dx, dy, dw, dh) coder with the "+1" pixel convention.

Widths and heights are ``x2 - x1 + 1`` (boxes as inclusive pixel ranges), in encode and decode;
decoding then places the corners at ``centre -+ w / 2`` and clips to ``(w - 1, h - 1)``. Only
for checkpoints trained with it (``legacy_1.x`` configs); new models use ``DeltaXYWHBBoxCoder``.
"""
import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from ...utils import MMDetArgumentError


@TASK_UTILS.register_module()
class LegacyDeltaXYWHBBoxCoder:
    """Args:
        target_means, target_stds: (4,) delta normalisation, as ``DeltaXYWHBBoxCoder``.
    """

    encode_size = 4

    def __init__(self, target_means: Sequence[float] = (0., 0., 0., 0.),
                 target_stds: Sequence[float] = (1., 1., 1., 1.), **kwargs) -> None:
        if len(target_means) != 4 or len(target_stds) != 4:
            raise MMDetArgumentError('LegacyDeltaXYWHBBoxCoder: target_means and target_stds need 4 values each')
        self.means = tuple(float(m) for m in target_means)
        self.stds = tuple(float(s) for s in target_stds)

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor) -> Tensor:
        """(N, 4) priors, (N, 4) gts -> (N, 4) normalised deltas (float32)."""
        if bboxes.shape != gt_bboxes.shape or bboxes.size(-1) != 4:
            raise MMDetArgumentError(f'LegacyDeltaXYWHBBoxCoder.encode: need two (N, 4), got '
                                     f'{tuple(bboxes.shape)} and {tuple(gt_bboxes.shape)}')
        p, g = bboxes.float(), gt_bboxes.float()
        pxy, pwh = (p[..., :2] + p[..., 2:]) * 0.5, p[..., 2:] - p[..., :2] + 1.0
        gxy, gwh = (g[..., :2] + g[..., 2:]) * 0.5, g[..., 2:] - g[..., :2] + 1.0
        deltas = torch.cat([(gxy - pxy) / pwh, torch.log(gwh / pwh)], dim=-1)
        return (deltas - deltas.new_tensor(self.means)) / deltas.new_tensor(self.stds)

    def decode(self, bboxes: Tensor, pred_bboxes: Tensor, max_shape: Optional[Sequence[int]] = None,
               wh_ratio_clip: float = 16 / 1000) -> Tensor:
        """(N, 4) priors, (N, 4 * C) deltas -> (N, 4 * C) boxes, clipped to [0, w - 1] x [0, h - 1]
        when ``max_shape`` (h, w) is given."""
        if pred_bboxes.size(0) != bboxes.size(0) or pred_bboxes.size(-1) % 4:
            raise MMDetArgumentError(f'LegacyDeltaXYWHBBoxCoder.decode: need bboxes (N, 4) and pred_bboxes '
                                     f'(N, 4*C), got {tuple(bboxes.shape)} and {tuple(pred_bboxes.shape)}')
        deltas = pred_bboxes.reshape(pred_bboxes.size(0), -1, 4)  # (N, C, 4)
        deltas = deltas * deltas.new_tensor(self.stds) + deltas.new_tensor(self.means)
        max_ratio = abs(math.log(wh_ratio_clip))
        dwh = deltas[..., 2:].clamp(min=-max_ratio, max=max_ratio)
        priors = bboxes.to(deltas.dtype)[:, None, :]
        pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
        pwh = priors[..., 2:] - priors[..., :2] + 1.0
        gxy = pxy + pwh * deltas[..., :2]
        gwh = pwh * dwh.exp()
        boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
        if max_shape is not None:
            # (h, w) as a tuple or a tensor (kept in the graph when traced): bounds (w-1, h-1, w-1, h-1).
            hw = torch.as_tensor(max_shape, dtype=boxes.dtype, device=boxes.device)[:2]
            boxes = torch.min(boxes.clamp(min=0), (hw.flip(0) - 1).repeat(2))
        return boxes.reshape(pred_bboxes.shape)

    def __repr__(self) -> str:
        return f'LegacyDeltaXYWHBBoxCoder(target_means={self.means}, target_stds={self.stds})'
