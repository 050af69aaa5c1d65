"""Plain-tensor box operations. Boxes are (..., 4) float tensors, xyxy, absolute pixels.

Widths are ``x2 - x1`` (no +1): MMDetection 3.x's convention, also torchvision's.
"""
from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor


def box_area(boxes: Tensor) -> Tensor:
    """(..., 4) -> (...,) area in square pixels (0 for degenerate boxes)."""
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def bbox_overlaps(bboxes1: Tensor, bboxes2: Tensor, mode: str = 'iou', is_aligned: bool = False,
                  eps: float = 1e-6) -> Tensor:
    """Pairwise overlaps between two sets of boxes, vectorised over leading batch dimensions.

    Args:
        bboxes1: (..., M, 4) xyxy.
        bboxes2: (..., N, 4) xyxy, same leading dims as ``bboxes1``.
        mode: ``'iou'`` (intersection over union) or ``'iof'`` (intersection over the area of
            ``bboxes1``, i.e. "foreground"; used for ignore regions).
        is_aligned: if True, M == N and the result is the (..., M) overlap of each aligned pair.
        eps: added to the denominator so empty boxes give 0 instead of NaN.

    Returns:
        (..., M, N) overlaps, or (..., M) if ``is_aligned``.
    """
    if mode not in ('iou', 'iof'):
        raise ValueError(f"bbox_overlaps: mode must be 'iou' or 'iof', got {mode!r}")
    area1 = box_area(bboxes1)
    area2 = box_area(bboxes2)
    if is_aligned:
        lt = torch.max(bboxes1[..., :2], bboxes2[..., :2])
        rb = torch.min(bboxes1[..., 2:], bboxes2[..., 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        union = area1 + area2 - inter if mode == 'iou' else area1
    else:
        lt = torch.max(bboxes1[..., :, None, :2], bboxes2[..., None, :, :2])
        rb = torch.min(bboxes1[..., :, None, 2:], bboxes2[..., None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        union = area1[..., :, None] + area2[..., None, :] - inter if mode == 'iou' else area1[..., :, None]
    return inter / union.clamp(min=eps)


def bbox_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """(..., 4) xyxy -> (..., 4) centre x, centre y, width, height."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1), dim=-1)


def bbox_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(..., 4) centre x, centre y, width, height -> (..., 4) xyxy."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def bbox2roi(bbox_list: Sequence[Tensor]) -> Tensor:
    """Per-image boxes -> one (sum n_i, 5) RoI tensor ``[batch_index, x1, y1, x2, y2]``.

    This is the layout ``torchvision.ops.roi_align`` takes for its ``boxes`` argument.
    """
    rois = [torch.cat((b.new_full((b.size(0), 1), i), b[:, :4]), dim=1) for i, b in enumerate(bbox_list)]
    return torch.cat(rois, dim=0)


def clip_boxes(boxes: Tensor, img_shape: Tuple[int, int]) -> Tensor:
    """Clip (..., 4) xyxy boxes to an image of shape (h, w). Returns a new tensor."""
    h, w = img_shape[:2]
    x = boxes[..., 0::2].clamp(0, w)
    y = boxes[..., 1::2].clamp(0, h)
    return torch.stack((x[..., 0], y[..., 0], x[..., 1], y[..., 1]), dim=-1)


def rescale_boxes(boxes: Tensor, scale_factor: Union[Tuple[float, float], List[float]]) -> Tensor:
    """Map boxes from a resized image back to the original: divide by (w_scale, h_scale)."""
    w_scale, h_scale = scale_factor[:2]
    return boxes / boxes.new_tensor([w_scale, h_scale, w_scale, h_scale])
