"""``BucketingBBoxCoder`` (SABL: "Side-Aware Boundary Localization", Wang et al., ECCV 2020).

Each side of a proposal (rescaled by ``scale_factor`` about its centre) is localised on its own:
the proposal's width (height) is cut into ``num_buckets`` buckets, and each side (left, right,
top, bottom) looks at the ``side_num = ceil(num_buckets / 2)`` buckets of its half, counted from
that side inwards. Bucket ``i`` of the left side is centred at ``x1 + (i + 0.5) * bucket_w``
(right: ``x2 - (i + 0.5) * bucket_w``; top/bottom likewise with heights).

``encode`` gives, per side, a one-hot *bucket label* (the bucket centre nearest the gt side),
classification weights, and *fine offsets* ``(bucket_centre - gt_side) / bucket_w`` for every
bucket, weighted on the ``offset_topk`` nearest buckets. ``decode`` picks each side's most
likely bucket and subtracts its predicted offset; the localisation confidence is the top bucket
probability (plus the second's when the two buckets are neighbours), averaged over the 4 sides.

Layout of every (N, 4 * side_num) tensor: [left buckets, right buckets, top buckets, bottom buckets].
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from ...utils import MMDetArgumentError


def rescale_boxes_about_centre(boxes: Tensor, scale_factor: float) -> Tensor:
    """(N, 4) xyxy (or (N, 5) RoIs, batch index kept) scaled by ``scale_factor`` about their centres."""
    if boxes.size(-1) == 5:
        return torch.cat([boxes[:, :1], rescale_boxes_about_centre(boxes[:, 1:], scale_factor)], dim=1)
    ctr = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    half = (boxes[:, 2:] - boxes[:, :2]) * scale_factor * 0.5
    return torch.cat([ctr - half, ctr + half], dim=1)


@TASK_UTILS.register_module()
class BucketingBBoxCoder:
    """Args:
        num_buckets: buckets across a (rescaled) proposal's width / height.
        scale_factor: proposals are enlarged by this about their centre before bucketing.
        offset_topk: nearest buckets that get a fine-offset target (weight).
        offset_upperbound: the 2nd..k-th nearest buckets only get one when closer than this (in buckets).
        cls_ignore_neighbor: give weight 0 to non-label buckets within one bucket of the gt side.
        clip_border: clip decoded boxes to ``max_shape``.
    """

    def __init__(self, num_buckets: int, scale_factor: float, offset_topk: int = 2, offset_upperbound: float = 1.0,
                 cls_ignore_neighbor: bool = True, clip_border: bool = True, **kwargs) -> None:
        self.num_buckets = num_buckets
        self.scale_factor = scale_factor
        self.offset_topk = offset_topk
        self.offset_upperbound = offset_upperbound
        self.cls_ignore_neighbor = cls_ignore_neighbor
        self.clip_border = clip_border
        self.side_num = int(math.ceil(num_buckets / 2.0))
        if offset_topk > self.side_num:
            raise MMDetArgumentError(f'BucketingBBoxCoder: offset_topk={offset_topk} exceeds the {self.side_num} '
                                     f'buckets per side of num_buckets={num_buckets}')
        self.encode_size = 4 * self.side_num

    def _buckets(self, proposals: Tensor) -> Tuple[Tensor, Tensor]:
        """(N, 4) proposals -> bucket sizes (N, 4) [w, w, h, h] and bucket centres (N, 4, side_num)."""
        p = rescale_boxes_about_centre(proposals, self.scale_factor)
        bw = (p[:, 2] - p[:, 0]) / self.num_buckets
        bh = (p[:, 3] - p[:, 1]) / self.num_buckets
        size = torch.stack([bw, bw, bh, bh], dim=1)  # per side: left, right, top, bottom
        steps = 0.5 + torch.arange(self.side_num, device=p.device, dtype=p.dtype)  # (S,)
        # Left / top move inwards from x1 / y1 (+), right / bottom from x2 / y2 (-).
        sides = p[:, [0, 2, 1, 3]]
        direction = p.new_tensor([1., -1., 1., -1.])
        centres = sides[:, :, None] + direction[None, :, None] * steps[None, None, :] * size[:, :, None]
        return size, centres

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Targets of (N, 4) gts against (N, 4) proposals.

        Returns:
            offsets (N, 4S) fine-regression targets in bucket units, offset_weights (N, 4S),
            bucket_labels (N, 4S) one-hot, bucket_cls_weights (N, 4S); S = side_num.
        """
        if bboxes.size(0) != gt_bboxes.size(0) or bboxes.size(-1) != 4 or gt_bboxes.size(-1) != 4:
            raise MMDetArgumentError(f'BucketingBBoxCoder.encode: need two (N, 4), got {tuple(bboxes.shape)} '
                                     f'and {tuple(gt_bboxes.shape)}')
        n = bboxes.size(0)
        size, centres = self._buckets(bboxes.float())
        gt_sides = gt_bboxes.float()[:, [0, 2, 1, 3]]
        offsets = (centres - gt_sides[:, :, None]) / size[:, :, None]  # (N, 4, S)
        dist, nearest = offsets.abs().topk(self.offset_topk, dim=2, largest=False, sorted=True)  # (N, 4, k)
        # Nearest bucket always gets an offset target; the next ones only within the upper bound.
        near_weight = (dist < self.offset_upperbound).float()
        near_weight[:, :, 0] = 1.0
        offset_weights = offsets.new_zeros(offsets.shape).scatter_(2, nearest, near_weight)
        labels = F.one_hot(nearest[:, :, 0], self.side_num).float()  # (N, 4, S)
        if self.cls_ignore_neighbor:
            cls_weights = (~((offsets.abs() < 1) & (labels == 0))).float()
        else:
            cls_weights = torch.ones_like(labels)
        return tuple(t.reshape(n, -1) for t in (offsets, offset_weights, labels, cls_weights))

    def decode(self, bboxes: Tensor, pred_bboxes: Sequence[Tensor],
               max_shape: Optional[Sequence[int]] = None) -> Tuple[Tensor, Tensor]:
        """Boxes from bucket scores and offsets.

        Args:
            bboxes: (N, 4) proposals.
            pred_bboxes: ``(cls_preds, offset_preds)``, each (N, 4S): bucket logits and offsets.
            max_shape: (h, w); boxes are clipped to [0, w - 1] x [0, h - 1] (MMDetection's bounds).

        Returns:
            bboxes (N, 4) and loc_confidence (N,).
        """
        if len(pred_bboxes) != 2:
            raise MMDetArgumentError('BucketingBBoxCoder.decode: pred_bboxes must be (cls_preds, offset_preds)')
        cls_preds, offset_preds = pred_bboxes
        n = bboxes.size(0)
        if cls_preds.size(0) != n or offset_preds.size(0) != n:
            raise MMDetArgumentError(f'BucketingBBoxCoder.decode: {n} boxes but predictions for '
                                     f'{cls_preds.size(0)} / {offset_preds.size(0)}')
        scores = F.softmax(cls_preds.reshape(n, 4, self.side_num), dim=2)
        top_scores, top_labels = scores.topk(2, dim=2, largest=True, sorted=True)  # (N, 4, 2)
        size, centres = self._buckets(bboxes)
        best = top_labels[:, :, :1]
        centre = centres.gather(2, best)[..., 0]  # (N, 4)
        offset = offset_preds.reshape(n, 4, self.side_num).gather(2, best)[..., 0]
        x1, x2, y1, y2 = (centre - offset * size).unbind(1)
        boxes = torch.stack([x1, y1, x2, y2], dim=-1)
        if self.clip_border and max_shape is not None:
            hw = torch.as_tensor(max_shape, dtype=boxes.dtype, device=boxes.device)[:2]
            boxes = torch.min(boxes.clamp(min=0), (hw.flip(0) - 1).repeat(2))  # (w-1, h-1, w-1, h-1)
        neighbours = ((top_labels[..., 0] - top_labels[..., 1]).abs() == 1).to(top_scores.dtype)
        loc_confidence = (top_scores[..., 0] + top_scores[..., 1] * neighbours).mean(dim=1)
        return boxes, loc_confidence

    def __repr__(self) -> str:
        return (f'BucketingBBoxCoder(num_buckets={self.num_buckets}, scale_factor={self.scale_factor}, '
                f'offset_topk={self.offset_topk}, offset_upperbound={self.offset_upperbound}, '
                f'cls_ignore_neighbor={self.cls_ignore_neighbor}, clip_border={self.clip_border})')
