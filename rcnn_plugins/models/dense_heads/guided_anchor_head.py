"""``GuidedAnchorHead``: the base of guided-anchoring heads (Wang et al., 2019; GARPNHead builds on it).

Per level, besides the objectness / deltas of ``AnchorHead``, it predicts where objects are
(``conv_loc``, one logit per location) and which anchor shape to place there (``conv_shape``,
(dw, dh) deltas of a square anchor). Features are adapted to the predicted shape by a deformable
conv (``feature_adaption``) before ``conv_cls`` / ``conv_reg`` (masked convs: at inference only the
locations with ``sigmoid(loc) >= loc_filter_thr`` produce outputs).

Training targets:
- location: per level, gts of the matching scale (``octave_base_scale * stride`` doubling per level)
  mark their centre region (``center_ratio`` of the box) positive, the surrounding
  ``ignore_ratio`` region and the same region on the adjacent levels ignored, the rest negative
  with weight 0.1;
- shape: squares assigned by ``ga_assigner`` (ApproxMaxIoUAssigner, through the approximating
  anchors of each location) regress their guided anchor to the gt (bounded IoU loss);
- classification / boxes: as ``AnchorHead``, on the guided anchors (one per location and image).
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...registry import MODELS, TASK_UTILS, build_or_use
from ..layers.feature_adaption import FeatureAdaption
from ..layers.masked_conv import MaskedConv2d
from .anchor_head import AnchorHead, check_no_gt_proposals


def calc_region(boxes: Tensor, ratio: float, featmap_size: Tuple[int, int]) -> Tensor:
    """(G, 4) boxes (feature-map units) -> (G, 4) long inclusive cell ranges (x1, y1, x2, y2) of the
    box shrunk by ``ratio`` of its size from each side, clamped to [0, size]."""
    x1 = torch.round((1 - ratio) * boxes[:, 0] + ratio * boxes[:, 2])
    y1 = torch.round((1 - ratio) * boxes[:, 1] + ratio * boxes[:, 3])
    x2 = torch.round(ratio * boxes[:, 0] + (1 - ratio) * boxes[:, 2])
    y2 = torch.round(ratio * boxes[:, 1] + (1 - ratio) * boxes[:, 3])
    h, w = featmap_size
    return torch.stack([x1.clamp(0, w), y1.clamp(0, h), x2.clamp(0, w), y2.clamp(0, h)], 1).long()


def region_masks(regions: Tensor, featmap_size: Tuple[int, int]) -> Tensor:
    """(G, 4) inclusive cell ranges -> (G, H, W) bool masks."""
    h, w = featmap_size
    ys = torch.arange(h, device=regions.device)[None, :, None]
    xs = torch.arange(w, device=regions.device)[None, None, :]
    r = regions[:, :, None, None]
    return (xs >= r[:, 0]) & (xs <= r[:, 2]) & (ys >= r[:, 1]) & (ys <= r[:, 3])


class GuidedAnchorHead(AnchorHead):
    """Args (MMDetection's ``GuidedAnchorHead``):
        num_classes, in_channels, feat_channels: as ``AnchorHead``.
        approx_anchor_generator: the approximating anchors (scales x ratios) of each location.
        square_anchor_generator: one square anchor per location (its scale must be the approx
            generator's ``octave_base_scale``, its strides the same).
        anchor_coder: decodes the shape deltas (dw, dh) on the squares; bbox_coder: the box deltas
            on the guided anchors.
        deform_groups: offset groups of the feature adaption.
        loc_filter_thr: at inference, locations with ``sigmoid(loc)`` below it produce nothing.
        loss_loc (focal), loss_shape (bounded IoU), loss_cls, loss_bbox: configs.
        train_cfg: ``assigner``/``sampler`` (on guided anchors), ``ga_assigner``/``ga_sampler`` (on
            squares), ``allowed_border``, ``center_ratio``, ``ignore_ratio``.
    """

    def __init__(self, num_classes: int, in_channels: int, feat_channels: int = 256,
                 approx_anchor_generator: dict = dict(type='AnchorGenerator', octave_base_scale=8, scales_per_octave=3,
                                                      ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]),
                 square_anchor_generator: dict = dict(type='AnchorGenerator', ratios=[1.0], scales=[8],
                                                      strides=[4, 8, 16, 32, 64]),
                 anchor_coder: dict = dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[1.0] * 4),
                 bbox_coder: dict = dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[1.0] * 4),
                 reg_decoded_bbox: bool = False, deform_groups: int = 4, loc_filter_thr: float = 0.01,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 loss_loc: dict = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
                 loss_shape: dict = dict(type='BoundedIoULoss', beta=0.2, loss_weight=1.0),
                 loss_cls: dict = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 loss_bbox: dict = dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
                 init_cfg=dict(type='Normal', layer='Conv2d', std=0.01,
                               override=dict(type='Normal', name='conv_loc', std=0.01, bias_prob=0.01))) -> None:
        self.deform_groups = deform_groups
        self.loc_filter_thr = loc_filter_thr
        self.approx_anchor_generator = build_or_use(TASK_UTILS, approx_anchor_generator)
        square = build_or_use(TASK_UTILS, square_anchor_generator)
        name = type(self).__name__
        if list(self.approx_anchor_generator.strides) != list(square.strides):
            raise ValueError(f'{name}: approx_anchor_generator and square_anchor_generator must have the same '
                             'strides')
        if square.num_base_priors[0] != 1:
            raise ValueError(f'{name}: square_anchor_generator must place one square per location (one ratio, one '
                             f'scale), got {square.num_base_priors[0]}')
        super().__init__(num_classes=num_classes, in_channels=in_channels, feat_channels=feat_channels,
                         anchor_generator=square, bbox_coder=bbox_coder, reg_decoded_bbox=reg_decoded_bbox,
                         loss_cls=loss_cls, loss_bbox=loss_bbox, train_cfg=train_cfg, test_cfg=test_cfg,
                         init_cfg=init_cfg)
        self.square_anchor_generator = self.prior_generator
        self.approxs_per_octave = self.approx_anchor_generator.num_base_priors[0]
        self.anchor_coder = build_or_use(TASK_UTILS, anchor_coder)
        self.loss_loc = build_or_use(MODELS, loss_loc)
        self.loss_shape = build_or_use(MODELS, loss_shape)
        if train_cfg is not None:
            for key in ('ga_assigner', 'center_ratio', 'ignore_ratio'):
                if key not in train_cfg:
                    raise ValueError(f'{name}: train_cfg needs {key!r} (see the guided_anchoring configs)')
            self.ga_assigner = build_or_use(TASK_UTILS, train_cfg['ga_assigner'])
            self.ga_sampler = build_or_use(TASK_UTILS, train_cfg.get('ga_sampler') or dict(type='PseudoSampler'))
            check_no_gt_proposals(self.ga_sampler, f'{name} train_cfg.ga_sampler')

    def _init_layers(self) -> None:
        self.conv_loc = nn.Conv2d(self.in_channels, 1, 1)
        self.conv_shape = nn.Conv2d(self.in_channels, self.num_base_priors * 2, 1)
        self.feature_adaption = FeatureAdaption(self.in_channels, self.feat_channels, kernel_size=3,
                                                deform_groups=self.deform_groups)
        self.conv_cls = MaskedConv2d(self.feat_channels, self.num_base_priors * self.cls_out_channels, 1)
        self.conv_reg = MaskedConv2d(self.feat_channels, self.num_base_priors * 4, 1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """(B, C, H, W) -> cls (B, cls_out, H, W), deltas (B, 4, H, W), shape (B, 2, H, W), loc (B, 1, H, W)."""
        loc_pred = self.conv_loc(x)
        shape_pred = self.conv_shape(x)
        x = self.feature_adaption(x, shape_pred)
        mask = None if self.training else loc_pred.sigmoid() >= self.loc_filter_thr
        return self.conv_cls(x, mask), self.conv_reg(x, mask), shape_pred, loc_pred

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], ...]:
        x = list(x)
        if len(x) != self.prior_generator.num_levels:
            raise ValueError(f'{type(self).__name__}: got {len(x)} feature levels for '
                             f'{self.prior_generator.num_levels} anchor strides; make them agree')
        outs = [self.forward_single(f) for f in x]
        return tuple([o[i] for o in outs] for i in range(4))

    # ------------------------------------------------------------------ anchors and targets
    def guided_anchors(self, squares: List[Tensor], shape_preds: List[Tensor]) -> List[Tensor]:
        """Per level (B, N_l, 4): each square with the predicted (dw, dh) applied (centre kept)."""
        out = []
        for sq, shape in zip(squares, shape_preds):
            deltas = shape.detach().permute(0, 2, 3, 1).reshape(shape.size(0), -1, 2)
            deltas = torch.cat([deltas.new_zeros(deltas.shape), deltas], dim=-1)
            out.append(self.anchor_coder.decode(sq[None].expand_as(deltas), deltas, wh_ratio_clip=1e-6))
        return out

    def ga_loc_targets(self, batch_gt_instances: List[InstanceData], featmap_sizes: List[Tuple[int, int]]):
        """Per level (B, 1, H, W) location targets (1: centre region) and weights (1 centre and
        negatives near nothing at 0.1, 0 ignored), and the loss's average factor (cells / 200).

        Overlapping gts of a level resolve as MMDetection's sequential writes: a cell takes the
        weight of the last gt (in input order) whose ignore region covers it.
        """
        scale = self.approx_anchor_generator.octave_base_scale
        strides = [s[0] for s in self.approx_anchor_generator.strides]
        r1 = (1 - self.train_cfg['center_ratio']) / 2
        r2 = (1 - self.train_cfg['ignore_ratio']) / 2
        num_lvls, num_imgs = len(featmap_sizes), len(batch_gt_instances)
        device = batch_gt_instances[0].bboxes.device
        targets = [torch.zeros(num_imgs, 1, h, w, device=device) for h, w in featmap_sizes]
        weights = [torch.full_like(t, -1) for t in targets]
        ignore = [torch.zeros_like(t, dtype=torch.bool) for t in targets]
        for i, gt in enumerate(batch_gt_instances):
            boxes = gt.bboxes
            if boxes.numel() == 0:
                continue
            size = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sqrt()
            lvls = torch.floor(torch.log2(size) - torch.log2(size.new_tensor(scale * strides[0])) + 0.5)
            lvls = lvls.clamp(0, num_lvls - 1).long()
            for lvl in range(num_lvls):
                sel = lvls == lvl
                if not sel.any():
                    continue
                gts = boxes[sel] / strides[lvl]
                ign = region_masks(calc_region(gts, r2, featmap_sizes[lvl]), featmap_sizes[lvl])
                ctr = region_masks(calc_region(gts, r1, featmap_sizes[lvl]), featmap_sizes[lvl])
                targets[lvl][i, 0][ctr.any(0)] = 1
                # The last covering gt decides: its centre -> 1, its ignore ring -> 0.
                order = torch.arange(1, len(gts) + 1, device=device)[:, None, None]
                last = (ign * order).max(0).values          # (H, W), 0: no gt covers it
                covered = last > 0
                last_ctr = ctr.gather(0, (last - 1).clamp(min=0)[None]).squeeze(0)
                w = weights[lvl][i, 0]
                w[covered] = last_ctr[covered].float()
                w[ctr.any(0) & ~covered] = 1
                # The same gts are ignored on the adjacent levels.
                for adj in (lvl - 1, lvl + 1):
                    if 0 <= adj < num_lvls:
                        region = calc_region(boxes[sel] / strides[adj], r2, featmap_sizes[adj])
                        ignore[adj][i, 0] |= region_masks(region, featmap_sizes[adj]).any(0)
        for t, w, ign in zip(targets, weights, ignore):
            w[(w < 0) & ign] = 0
            w[w < 0] = 0.1
        avg_factor = sum(t.size(0) * t.size(-1) * t.size(-2) for t in targets) / 200
        return targets, weights, avg_factor

    def inside_flags(self, featmap_sizes: List[Tuple[int, int]], batch_img_metas: List[dict],
                     device) -> Tuple[List[Tensor], Tensor]:
        """Approxs (all levels, (N * A, 4)) and per image (N,) flags: a location counts when any of
        its approxs lies on the image (within ``allowed_border``; -1: every valid location)."""
        mlvl = self.approx_anchor_generator.grid_priors(featmap_sizes, device=device)
        approxs = torch.cat(mlvl)
        border = self.train_cfg.get('allowed_border', -1)
        flags = []
        for meta in batch_img_metas:
            pad = meta.get('pad_shape', meta.get('batch_input_shape', meta['img_shape']))[:2]
            valid = torch.cat(self.approx_anchor_generator.valid_flags(featmap_sizes, pad, device=device))
            if border >= 0:
                h, w = meta['img_shape'][:2]
                valid = valid & (approxs[:, 0] >= -border) & (approxs[:, 1] >= -border) \
                    & (approxs[:, 2] < w + border) & (approxs[:, 3] < h + border)
            flags.append(valid.view(-1, self.approxs_per_octave).any(1))
        return approxs, flags

    def _shape_targets_single(self, approxs: Tensor, inside: Tensor, squares: Tensor,
                              gt_instances: InstanceData) -> Tuple[Tensor, Tensor, Tensor, float]:
        """One image: (N, 4) squares to regress, their gts, weights (N, 4) and the sampled count."""
        if not inside.any():
            raise ValueError(f'{type(self).__name__}: no anchor lies inside the image; check the image size and '
                             'anchor sizes, or set train_cfg allowed_border=-1')
        inds = inside.nonzero().squeeze(1)
        pred = InstanceData(priors=squares[inds], approxs=approxs.view(-1, self.approxs_per_octave, 4)[inds])
        assign = self.ga_assigner.assign(pred, gt_instances)
        sampling = self.ga_sampler.sample(assign, pred, gt_instances)
        anchors, gts, weights = torch.zeros_like(squares), torch.zeros_like(squares), torch.zeros_like(squares)
        pos = inds[sampling.pos_inds]
        anchors[pos], gts[pos], weights[pos] = sampling.pos_priors, sampling.pos_gt_bboxes, 1.0
        return anchors, gts, weights, sampling.avg_factor

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor], shape_preds: List[Tensor],
                     loc_preds: List[Tensor], batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[Optional[InstanceData]]] = None) -> dict:
        """Per level: ``loss_cls``, ``loss_bbox`` (on guided anchors), ``loss_shape``, ``loss_loc``."""
        if self.train_cfg is None:
            raise ValueError(f'{type(self).__name__}.loss needs train_cfg (assigner, ga_assigner, ...)')
        num_imgs, device = cls_scores[0].size(0), cls_scores[0].device
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * num_imgs
        sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        level_sizes = [h * w for h, w in sizes]
        loc_targets, loc_weights, loc_avg = self.ga_loc_targets(batch_gt_instances, sizes)
        approxs, inside = self.inside_flags(sizes, batch_img_metas, device)
        squares = self.square_anchor_generator.grid_priors(sizes, device=device)
        guided = torch.cat(self.guided_anchors(squares, shape_preds), dim=1)             # (B, N, 4)
        flat_squares = torch.cat(squares)

        shape_t = [self._shape_targets_single(approxs, f, flat_squares, gt)
                   for f, gt in zip(inside, batch_gt_instances)]
        shape_avg = sum(t[3] for t in shape_t)
        shape_anchors, shape_gts, shape_weights = (torch.stack([t[k] for t in shape_t]).split(level_sizes, 1)
                                                   for k in range(3))
        cls_t = [self._get_targets_single(guided[i], inside[i], gt, meta, ign) for i, (gt, meta, ign) in
                 enumerate(zip(batch_gt_instances, batch_img_metas, batch_gt_instances_ignore))]
        avg_factor = sum(t[4] for t in cls_t)
        labels, label_w, box_t, box_w = (torch.stack([t[k] for t in cls_t]).split(level_sizes, 1) for k in range(4))
        guided_lvls = guided.split(level_sizes, 1)

        losses = dict(loss_cls=[], loss_bbox=[], loss_shape=[], loss_loc=[])
        for lvl in range(len(sizes)):
            cls = cls_scores[lvl].permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels).float()
            reg = bbox_preds[lvl].permute(0, 2, 3, 1).reshape(-1, 4).float()
            if self.reg_decoded_bbox:
                reg = self.bbox_coder.decode(guided_lvls[lvl].reshape(-1, 4), reg)
            losses['loss_cls'].append(self.loss_cls(cls, labels[lvl].reshape(-1), label_w[lvl].reshape(-1),
                                                    avg_factor=avg_factor))
            losses['loss_bbox'].append(self.loss_bbox(reg, box_t[lvl].reshape(-1, 4), box_w[lvl].reshape(-1, 4),
                                                      avg_factor=avg_factor))
            # Shape: the square with the predicted (dw, dh), against the gt, on sampled squares only.
            shape = shape_preds[lvl].permute(0, 2, 3, 1).reshape(-1, 2)
            keep = (shape_weights[lvl].reshape(-1, 4)[:, 0] > 0).nonzero().squeeze(1)
            deltas = torch.cat([shape.new_zeros(len(keep), 2), shape[keep]], dim=1)
            pred_anchors = self.anchor_coder.decode(shape_anchors[lvl].reshape(-1, 4)[keep], deltas,
                                                    wh_ratio_clip=1e-6)
            losses['loss_shape'].append(self.loss_shape(pred_anchors, shape_gts[lvl].reshape(-1, 4)[keep],
                                                        shape_weights[lvl].reshape(-1, 4)[keep], avg_factor=shape_avg))
            # Location: a sigmoid focal loss with the centre regions as the positive class (index 0).
            loc_labels = (1 - loc_targets[lvl].reshape(-1)).long()
            losses['loss_loc'].append(self.loss_loc(loc_preds[lvl].reshape(-1, 1), loc_labels,
                                                    loc_weights[lvl].reshape(-1), avg_factor=loc_avg))
        return losses
