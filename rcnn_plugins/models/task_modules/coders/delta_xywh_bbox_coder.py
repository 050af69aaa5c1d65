"""``DeltaXYWHBBoxCoder``: the (dx, dy, dw, dh) box parametrisation of R-CNN.

For a prior with centre (px, py) and size (pw, ph) and a target with (gx, gy, gw, gh):
``dx = (gx - px) / pw, dy = (gy - py) / ph, dw = log(gw / pw), dh = log(gh / ph)``, then
normalised by ``(delta - target_means) / target_stds``. Widths are x2 - x1 (no +1).
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from ...utils import MMDetArgumentError


@TASK_UTILS.register_module()
class DeltaXYWHBBoxCoder:
    """Encode boxes as normalised centre/size deltas against priors, and decode them back.

    Args:
        target_means: (4,) means subtracted from the raw deltas.
        target_stds: (4,) stds the raw deltas are divided by (RoI head: (0.1, 0.1, 0.2, 0.2)).
        clip_border: clip decoded boxes to ``max_shape`` when it is given.
        add_ctr_clamp: clamp the centre shift ``dx * pw`` to +-``ctr_clamp`` pixels (and dw/dh
            only from above), as some single-stage detectors do.
        ctr_clamp: the centre shift bound in pixels.
    """

    def __init__(self,
                 target_means: Sequence[float] = (0., 0., 0., 0.),
                 target_stds: Sequence[float] = (1., 1., 1., 1.),
                 clip_border: bool = True,
                 add_ctr_clamp: bool = False,
                 ctr_clamp: int = 32) -> None:
        if len(target_means) != 4 or len(target_stds) != 4:
            raise ValueError(f'DeltaXYWHBBoxCoder: target_means and target_stds need 4 values each, '
                             f'got {target_means!r} and {target_stds!r}')
        self.means = tuple(float(m) for m in target_means)
        self.stds = tuple(float(s) for s in target_stds)
        self.clip_border = clip_border
        self.add_ctr_clamp = add_ctr_clamp
        self.ctr_clamp = ctr_clamp
        self.encode_size = 4

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor) -> Tensor:
        """Regression targets of ``gt_bboxes`` relative to ``bboxes``.

        Args:
            bboxes: (..., 4) xyxy priors (anchors / proposals).
            gt_bboxes: (..., 4) xyxy targets, same shape.

        Returns:
            (..., 4) float32 normalised deltas.
        """
        if bboxes.shape[:-1] != gt_bboxes.shape[:-1] or bboxes.size(-1) != 4 or gt_bboxes.size(-1) != 4:
            raise ValueError(f'DeltaXYWHBBoxCoder.encode: bboxes and gt_bboxes must both be (..., 4) with the '
                             f'same shape, got {tuple(bboxes.shape)} and {tuple(gt_bboxes.shape)}')
        p = bboxes.float()
        g = gt_bboxes.float()
        pxy = (p[..., :2] + p[..., 2:]) * 0.5
        pwh = p[..., 2:] - p[..., :2]
        gxy = (g[..., :2] + g[..., 2:]) * 0.5
        gwh = g[..., 2:] - g[..., :2]
        deltas = torch.cat([(gxy - pxy) / pwh, torch.log(gwh / pwh)], dim=-1)
        return (deltas - deltas.new_tensor(self.means)) / deltas.new_tensor(self.stds)

    def decode(self, bboxes: Tensor, pred_bboxes: Tensor,
               max_shape: Optional[Union[Tuple[int, int], Sequence[Tuple[int, int]], Tensor]] = None,
               wh_ratio_clip: float = 16 / 1000) -> Tensor:
        """Apply predicted deltas to priors.

        Args:
            bboxes: (..., N, 4) xyxy priors.
            pred_bboxes: (..., N, 4 * C) normalised deltas; C > 1 means class-specific deltas,
                each decoded against the same prior.
            max_shape: (h, w) to clip to, a tuple or a 1-D tensor; with a leading batch dim B,
                also a (B, 2) tensor or a list of B (h, w), one per image.
            wh_ratio_clip: |dw|, |dh| are clamped to |log(wh_ratio_clip)| so exp() cannot
                blow up (a box grows at most 1 / wh_ratio_clip = 62.5 times).

        Returns:
            (..., N, 4 * C) xyxy boxes, dtype of ``pred_bboxes``.
        """
        if pred_bboxes.shape[:-1] != bboxes.shape[:-1] or pred_bboxes.size(-1) % 4 or bboxes.size(-1) != 4:
            raise ValueError(f'DeltaXYWHBBoxCoder.decode: need bboxes (..., N, 4) and pred_bboxes (..., N, 4*C), '
                             f'got {tuple(bboxes.shape)} and {tuple(pred_bboxes.shape)}')
        if pred_bboxes.numel() == 0:
            return pred_bboxes
        out_shape = pred_bboxes.shape
        deltas = pred_bboxes.reshape(*out_shape[:-1], -1, 4)  # (..., N, C, 4)
        deltas = deltas * deltas.new_tensor(self.stds) + deltas.new_tensor(self.means)
        dxy, dwh = deltas[..., :2], deltas[..., 2:]
        priors = bboxes.to(deltas.dtype)[..., None, :]  # (..., N, 1, 4): shared by the C classes
        pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
        pwh = priors[..., 2:] - priors[..., :2]

        dxy_wh = pwh * dxy
        max_ratio = abs(math.log(wh_ratio_clip))
        if self.add_ctr_clamp:
            dxy_wh = dxy_wh.clamp(min=-self.ctr_clamp, max=self.ctr_clamp)
            dwh = dwh.clamp(max=max_ratio)
        else:
            dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
        gxy = pxy + dxy_wh
        gwh = pwh * dwh.exp()
        boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)

        if self.clip_border and max_shape is not None:
            boxes = self._clip(boxes, max_shape)
        return boxes.reshape(out_shape)

    @staticmethod
    def _clip(boxes: Tensor, max_shape) -> Tensor:
        """Clip (..., C, 4) boxes to one (h, w), or per leading batch index to (B, 2) shapes.

        As MMDetection: a 1-D tensor is one shape for every box, a 2-D tensor (B, 2+) one shape
        per image; only the first two values (h, w) of each shape are used.
        """
        if isinstance(max_shape, Tensor) and max_shape.dim() == 1:
            upper = max_shape[:2].to(boxes).flip(0).repeat(2)  # (4,) bounds (w, h, w, h)
            return torch.min(boxes.clamp(min=0), upper)
        if isinstance(max_shape, Tensor) or isinstance(max_shape[0], (tuple, list, Tensor)):
            if isinstance(max_shape, Tensor):
                # kept in the graph when traced (ONNX export with dynamic sizes reads it from the input shape)
                hw = max_shape.to(dtype=boxes.dtype, device=boxes.device)
            else:
                hw = torch.as_tensor(max_shape, dtype=boxes.dtype, device=boxes.device)
            hw = hw.reshape(-1, hw.size(-1))[:, :2]
            if boxes.dim() < 4 or hw.size(0) != boxes.size(0):
                # MMDetection asserts here: the error is both a ValueError and an AssertionError.
                raise MMDetArgumentError(f'DeltaXYWHBBoxCoder.decode: per-image max_shape needs boxes with a leading '
                                         f'batch dim of the same size, got {hw.size(0)} shapes for boxes '
                                         f'{tuple(boxes.shape)}')
            hw = hw.reshape(-1, *([1] * (boxes.dim() - 2)), 2)  # (B, 1, ..., 1, 2)
            # (x1, y1, x2, y2) upper bounds (w, h, w, h)
            upper = torch.cat([hw.flip(-1), hw.flip(-1)], dim=-1)
            return torch.min(boxes.clamp(min=0), upper)
        h, w = max_shape[:2]
        x = boxes[..., 0::2].clamp(min=0, max=w)
        y = boxes[..., 1::2].clamp(min=0, max=h)
        return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(target_means={self.means}, target_stds={self.stds}, '
                f'clip_border={self.clip_border}, add_ctr_clamp={self.add_ctr_clamp}, ctr_clamp={self.ctr_clamp})')
