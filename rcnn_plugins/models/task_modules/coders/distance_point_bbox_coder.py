"""``DistancePointBBoxCoder`` (FCOS): a box as its distances (left, top, right, bottom) from a point."""
from typing import Optional

import torch
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from ...utils import MMDetArgumentError


@TASK_UTILS.register_module()
class DistancePointBBoxCoder:
    """Points + (l, t, r, b) distances <-> xyxy boxes (MMDetection's ``DistancePointBBoxCoder``).

    Args:
        clip_border: clip decoded boxes to ``max_shape`` (h, w).
    """

    encode_size = 4

    def __init__(self, clip_border: Optional[bool] = True, **kwargs) -> None:
        self.clip_border = clip_border

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor, max_dis: Optional[float] = None, eps: float = 0.1) -> Tensor:
        """(N, 2) points (x, y) (the protocol's ``bboxes``), (N, 4) gt boxes -> (N, 4) distances
        (l, t, r, b) in pixels, clamped to [0, max_dis - eps] when ``max_dis`` is given."""
        if bboxes.size(-1) != 2 or gt_bboxes.size(-1) != 4 or bboxes.shape[:-1] != gt_bboxes.shape[:-1]:
            raise MMDetArgumentError(f'DistancePointBBoxCoder.encode: need (N, 2) points and (N, 4) boxes, got '
                                     f'{tuple(bboxes.shape)} and {tuple(gt_bboxes.shape)}')
        dist = torch.cat([bboxes - gt_bboxes[..., :2], gt_bboxes[..., 2:] - bboxes], dim=-1)
        if max_dis is not None:
            dist = dist.clamp(min=0, max=max_dis - eps)
        return dist

    def decode(self, bboxes: Tensor, pred_bboxes: Tensor, max_shape=None) -> Tensor:
        """(..., N, 2) points, (..., N, 4) distances (l, t, r, b) -> (..., N, 4) xyxy boxes, clipped
        to ``max_shape`` (h, w) when ``clip_border``."""
        if bboxes.size(-1) != 2 or pred_bboxes.size(-1) != 4:
            raise MMDetArgumentError(f'DistancePointBBoxCoder.decode: need (N, 2) points and (N, 4) distances, '
                                     f'got {tuple(bboxes.shape)} and {tuple(pred_bboxes.shape)}')
        boxes = torch.cat([bboxes - pred_bboxes[..., :2], bboxes + pred_bboxes[..., 2:]], dim=-1)
        if self.clip_border and max_shape is not None:
            hw = torch.as_tensor(max_shape, dtype=boxes.dtype, device=boxes.device)[..., :2]
            # x is bounded by w, y by h: (w, h, w, h).
            bound = torch.cat([hw.flip(-1), hw.flip(-1)], dim=-1)
            if bound.dim() == 2:
                bound = bound[:, None, :]
            boxes = torch.minimum(boxes.clamp(min=0), bound)
        return boxes
