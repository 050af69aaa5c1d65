"""``RegionAssigner`` (Cascade RPN, first stage): anchors are assigned by where their centres fall,
not by IoU. Each gt goes to the pyramid level of its scale (``anchor_scale * stride`` doubling per
level); on that level anchors centred in the box's central ``center_ratio`` region are positive,
those in the surrounding ``ignore_ratio`` region ignored, and the same ignore region on the two
adjacent levels is ignored too. Anchors outside the image are ignored."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from rcnn_plugins.registry import TASK_UTILS
from .assign_result import AssignResult


def calc_region(boxes: Tensor, ratio: float, stride: int, featmap_size: Tuple[int, int]) -> Tensor:
    """(G, 4) boxes in pixels -> (G, 4) float region (x1, y1, x2, y2) in feature cells: the box on
    the level shrunk by ``ratio`` of its size from each side, rounded and clamped to [0, size]."""
    b = boxes / stride
    x1 = torch.round((1 - ratio) * b[:, 0] + ratio * b[:, 2])
    y1 = torch.round((1 - ratio) * b[:, 1] + ratio * b[:, 3])
    x2 = torch.round(ratio * b[:, 0] + (1 - ratio) * b[:, 2])
    y2 = torch.round(ratio * b[:, 1] + (1 - ratio) * b[:, 3])
    h, w = featmap_size
    return torch.stack([x1.clamp(0, w), y1.clamp(0, h), x2.clamp(0, w), y2.clamp(0, h)], 1)


def centres_in_regions(anchors: Tensor, stride: int, regions: Tensor) -> Tensor:
    """(N, 4) anchors, (G, 4) regions (cells) -> (G, N) bool: the anchor centre / stride lies in the
    region, borders included."""
    cx = (anchors[:, 0] + anchors[:, 2]) * 0.5 / stride
    cy = (anchors[:, 1] + anchors[:, 3]) * 0.5 / stride
    r = regions[:, :, None]
    return (cx >= r[:, 0]) & (cx <= r[:, 2]) & (cy >= r[:, 1]) & (cy <= r[:, 3])


@TASK_UTILS.register_module()
class RegionAssigner:
    """MMDetection's ``RegionAssigner``.

    Args:
        center_ratio: side fraction of the positive (central) region of a gt box.
        ignore_ratio: side fraction of its ignore region.
    """

    def __init__(self, center_ratio: float = 0.2, ignore_ratio: float = 0.5) -> None:
        self.center_ratio = center_ratio
        self.ignore_ratio = ignore_ratio

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData, img_meta: Optional[dict] = None,
               featmap_sizes: Optional[List[Tuple[int, int]]] = None,
               num_level_anchors: Optional[Sequence[int]] = None, anchor_scale: Optional[float] = None,
               anchor_strides: Optional[Sequence[int]] = None,
               gt_instances_ignore: Optional[InstanceData] = None, allowed_border: int = 0) -> AssignResult:
        """Assign ``pred_instances.priors`` (N, 4) of all levels (with ``valid_flags`` (N,)) to
        ``gt_instances`` (bboxes (G, 4), labels (G,)).

        Args:
            img_meta: ``img_shape`` (h, w), for the inside-image check with ``allowed_border``.
            featmap_sizes: per level (H_l, W_l); num_level_anchors: per level N_l (sum N).
            anchor_scale, anchor_strides: the anchors' scale and per-level strides.

        Overlapping gts resolve as MMDetection's sequential writes: an anchor takes the last gt
        (in input order) whose ignore region holds its centre, positive if it is also in that gt's
        centre region, else ignored.

        Returns:
            AssignResult with ``gt_inds`` (N,) (-1 ignored, 0 negative, k gt k - 1), ``labels``
            (N,) (0 where not positive, as MMDetection) and ``max_overlaps`` None.
        """
        missing = [k for k, v in dict(img_meta=img_meta, featmap_sizes=featmap_sizes,
                                      num_level_anchors=num_level_anchors, anchor_scale=anchor_scale,
                                      anchor_strides=anchor_strides).items() if v is None]
        if missing:
            raise ValueError(f'RegionAssigner.assign needs {missing} (StageCascadeRPNHead passes them)')
        if gt_instances_ignore is not None:
            raise NotImplementedError('RegionAssigner: ignored gt boxes are not supported (as in MMDetection)')
        priors, gt_bboxes, gt_labels = pred_instances.priors, gt_instances.bboxes, gt_instances.labels
        n, g = priors.size(0), gt_bboxes.size(0)
        if n == 0 or g == 0:
            return AssignResult(g, priors.new_zeros(n, dtype=torch.long), None,
                                priors.new_full((n,), -1, dtype=torch.long))
        mlvl_anchors = priors.split(list(num_level_anchors))
        num_lvls = len(mlvl_anchors)
        r1, r2 = (1 - self.center_ratio) / 2, (1 - self.ignore_ratio) / 2
        scale = ((gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1])).sqrt()
        lvls = torch.floor(torch.log2(scale) - torch.log2(scale.new_tensor(float(anchor_scale * anchor_strides[0])))
                           + 0.5).clamp(0, num_lvls - 1).long()
        gt_ids = torch.arange(1, g + 1, device=priors.device)
        out, adjacent_ignore = [], []
        for lvl, anchors in enumerate(mlvl_anchors):
            stride, size = anchor_strides[lvl], featmap_sizes[lvl]
            inds = anchors.new_zeros(anchors.size(0), dtype=torch.long)
            sel = lvls == lvl
            if sel.any():
                ign = centres_in_regions(anchors, stride, calc_region(gt_bboxes[sel], r2, stride, size))
                ctr = centres_in_regions(anchors, stride, calc_region(gt_bboxes[sel], r1, stride, size))
                order = torch.arange(1, int(sel.sum()) + 1, device=priors.device)[:, None]
                last = (ign * order).max(0).values                 # (N_l,), 0: no gt region holds it
                covered = last > 0
                last_ctr = ctr.gather(0, (last - 1).clamp(min=0)[None]).squeeze(0)
                inds[covered] = torch.where(last_ctr, gt_ids[sel][(last - 1).clamp(min=0)], -1)[covered]
            # Gts of the levels just below and above ignore their region here.
            near = (lvls == lvl - 1) | (lvls == lvl + 1)
            adjacent_ignore.append(
                centres_in_regions(anchors, stride, calc_region(gt_bboxes[near], r2, stride, size)).any(0)
                if near.any() else torch.zeros_like(inds, dtype=torch.bool))
            out.append(inds)
        gt_inds = torch.cat(out)
        gt_inds[torch.cat(adjacent_ignore)] = -1
        inside = pred_instances.valid_flags.bool()
        if allowed_border >= 0:
            h, w = img_meta['img_shape'][:2]
            inside = inside & (priors[:, 0] >= -allowed_border) & (priors[:, 1] >= -allowed_border) \
                & (priors[:, 2] < w + allowed_border) & (priors[:, 3] < h + allowed_border)
        gt_inds[~inside] = -1
        labels = torch.zeros_like(gt_inds)
        pos = gt_inds > 0
        labels[pos] = gt_labels[gt_inds[pos] - 1].long()
        return AssignResult(g, gt_inds, None, labels)
