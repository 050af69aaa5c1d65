"""``TBLRBBoxCoder`` (FSAF): a box as its distances (top, bottom, left, right) from the prior's
centre, divided by the prior's height (t, b) or width (l, r) and by ``normalizer``."""
from typing import Sequence, Union

import torch
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from ...utils import MMDetArgumentError


@TASK_UTILS.register_module()
class TBLRBBoxCoder:
    """Args:
        normalizer: one factor, or 4 (t, b, l, r), the distances are divided by (4.0).
        clip_border: clip decoded boxes to ``max_shape``.
    """

    encode_size = 4

    def __init__(self, normalizer: Union[Sequence[float], float] = 4.0, clip_border: bool = True, **kwargs) -> None:
        if not isinstance(normalizer, (int, float)) and len(normalizer) != 4:
            raise MMDetArgumentError(f'TBLRBBoxCoder: normalizer must be a number or 4 numbers, got {normalizer!r}')
        self.normalizer = normalizer
        self.clip_border = clip_border

    def _norm(self, ref: Tensor) -> Union[float, Tensor]:
        return float(self.normalizer) if isinstance(self.normalizer, (int, float)) else ref.new_tensor(self.normalizer)

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor) -> Tensor:
        """(N, 4) priors, (N, 4) gts -> (N, 4) normalised (top, bottom, left, right)."""
        if bboxes.shape != gt_bboxes.shape or bboxes.size(-1) != 4:
            raise MMDetArgumentError(f'TBLRBBoxCoder.encode: need two (N, 4), got {tuple(bboxes.shape)} '
                                     f'and {tuple(gt_bboxes.shape)}')
        ctr = (bboxes[..., :2] + bboxes[..., 2:]) / 2
        wh = bboxes[..., 2:] - bboxes[..., :2]
        cx, cy, w, h = ctr[..., 0], ctr[..., 1], wh[..., 0], wh[..., 1]
        loc = torch.stack([(cy - gt_bboxes[..., 1]) / h, (gt_bboxes[..., 3] - cy) / h,
                           (cx - gt_bboxes[..., 0]) / w, (gt_bboxes[..., 2] - cx) / w], dim=-1)
        return loc / self._norm(loc)

    def decode(self, bboxes: Tensor, pred_bboxes: Tensor, max_shape=None) -> Tensor:
        """(..., N, 4) priors, (..., N, 4) tblr -> (..., N, 4) boxes; ``max_shape`` (h, w), or per
        image (B, 2) / a list of B shapes for batched (B, N, 4) input."""
        if bboxes.shape != pred_bboxes.shape:
            raise MMDetArgumentError(f'TBLRBBoxCoder.decode: bboxes and pred_bboxes differ: {tuple(bboxes.shape)} '
                                     f'vs {tuple(pred_bboxes.shape)}')
        loc = pred_bboxes * self._norm(pred_bboxes)
        ctr = (bboxes[..., :2] + bboxes[..., 2:]) / 2
        wh = bboxes[..., 2:] - bboxes[..., :2]
        top, bottom = loc[..., 0] * wh[..., 1], loc[..., 1] * wh[..., 1]
        left, right = loc[..., 2] * wh[..., 0], loc[..., 3] * wh[..., 0]
        boxes = torch.stack([ctr[..., 0] - left, ctr[..., 1] - top, ctr[..., 0] + right, ctr[..., 1] + bottom], -1)
        if self.clip_border and max_shape is not None:
            hw = torch.as_tensor(max_shape, dtype=boxes.dtype, device=boxes.device)[..., :2]
            if hw.dim() == 2:
                if boxes.dim() != 3 or hw.size(0) != boxes.size(0):
                    raise MMDetArgumentError(f'TBLRBBoxCoder.decode: {hw.size(0)} max_shapes for boxes '
                                             f'{tuple(boxes.shape)}; per-image shapes need (B, N, 4) boxes')
                hw = hw[:, None, :]
            upper = torch.cat([hw, hw], dim=-1).flip(-1)  # (w, h, w, h)
            boxes = torch.min(boxes.clamp(min=0), upper)
        return boxes

    def __repr__(self) -> str:
        return f'TBLRBBoxCoder(normalizer={self.normalizer}, clip_border={self.clip_border})'
