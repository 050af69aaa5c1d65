"""``FCOSHead`` (Tian et al., 2019): anchor-free detection from points, here usable as the RPN of a
two-stage detector (MMDetection's ``faster-rcnn_r50_fpn_fcos-rpn_1x_coco.py``).

On top of ``AnchorFreeHead`` (two GN conv towers, ``conv_cls``, ``conv_reg``) it predicts a
centerness logit (``conv_centerness``) and scales each level's distances by a learnt scalar
(``scales.<l>.scale``). Distances are ``exp(scale * x)`` pixels (``norm_on_bbox``: ``relu(scale * x)``
strides, times the stride at inference).

Targets: a point is positive for the smallest-area gt box that contains it (with
``center_sampling``: lies within ``center_sample_radius`` strides of the box centre, clipped to the
box) and whose largest distance (l, t, r, b) falls in the level's ``regress_ranges`` interval.
Losses: focal loss over all points (averaged over positives), IoU loss on positive boxes weighted
by their centerness target, centerness BCE.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import Scale
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...registry import MODELS, build_or_use
from .anchor_free_head import AnchorFreeHead

INF = 1e8


def centerness_target(bbox_targets: Tensor) -> Tensor:
    """(N, 4) distances (l, t, r, b) -> (N,) ``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))``."""
    lr, tb = bbox_targets[:, [0, 2]], bbox_targets[:, [1, 3]]
    if lr.numel() == 0:
        return lr[:, 0]
    return torch.sqrt(lr.min(-1)[0] / lr.max(-1)[0] * (tb.min(-1)[0] / tb.max(-1)[0]))


@MODELS.register_module()
class FCOSHead(AnchorFreeHead):
    """FCOS head (MMDetection's ``FCOSHead``).

    Args:
        num_classes, in_channels: as ``AnchorFreeHead``.
        regress_ranges: per level, the (min, max] range of a positive's largest distance, pixels.
        center_sampling: positives only near the box centre (radius ``center_sample_radius`` strides).
        norm_on_bbox: regress distances in strides (``relu``) instead of ``exp`` pixels.
        centerness_on_reg: centerness from the regression tower instead of the classification one.
        loss_centerness: config (sigmoid BCE).
        norm_cfg: of the tower convs (GN, 32 groups).
        **kwargs: other ``AnchorFreeHead`` arguments (strides, stacked_convs, losses, cfgs...).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 regress_ranges: Sequence[Tuple[float, float]] = ((-1, 64), (64, 128), (128, 256), (256, 512),
                                                                  (512, INF)),
                 center_sampling: bool = False,
                 center_sample_radius: float = 1.5,
                 norm_on_bbox: bool = False,
                 centerness_on_reg: bool = False,
                 loss_cls: dict = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
                 loss_bbox: dict = dict(type='IoULoss', loss_weight=1.0),
                 loss_centerness: dict = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 norm_cfg: Optional[dict] = dict(type='GN', num_groups=32, requires_grad=True),
                 init_cfg=dict(type='Normal', layer='Conv2d', std=0.01,
                               override=dict(type='Normal', name='conv_cls', std=0.01, bias_prob=0.01)),
                 **kwargs) -> None:
        self.regress_ranges = [tuple(r) for r in regress_ranges]
        self.center_sampling = center_sampling
        self.center_sample_radius = center_sample_radius
        self.norm_on_bbox = norm_on_bbox
        self.centerness_on_reg = centerness_on_reg
        super().__init__(num_classes=num_classes, in_channels=in_channels, loss_cls=loss_cls, loss_bbox=loss_bbox,
                         norm_cfg=norm_cfg, init_cfg=init_cfg, **kwargs)
        if len(self.regress_ranges) != self.prior_generator.num_levels:
            raise ValueError(f'FCOSHead: {len(self.regress_ranges)} regress_ranges for '
                             f'{self.prior_generator.num_levels} strides; give one (min, max) range per level')
        self.loss_centerness = build_or_use(MODELS, loss_centerness)

    def _init_layers(self) -> None:
        super()._init_layers()
        self.conv_centerness = nn.Conv2d(self.feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Per level (B, C_in, H_l, W_l) -> cls_scores (B, cls_out, H_l, W_l), bbox_preds (B, 4, H_l, W_l)
        distances (pixels; strides when training with ``norm_on_bbox``), centernesses (B, 1, H_l, W_l) logits."""
        x = list(x)
        self._check_levels(x)
        outs = [self._forward_level(feat, scale, stride) for feat, scale, stride in zip(x, self.scales, self.strides)]
        return tuple([o[i] for o in outs] for i in range(3))

    def _forward_level(self, x: Tensor, scale: nn.Module, stride: int) -> Tuple[Tensor, Tensor, Tensor]:
        cls_score, bbox_pred, cls_feat, reg_feat = self.forward_single(x)
        centerness = self.conv_centerness(reg_feat if self.centerness_on_reg else cls_feat)
        # The learnt per-level scale lets the shared head output similar magnitudes on every level.
        bbox_pred = scale(bbox_pred).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0)
            if not self.training:
                bbox_pred = bbox_pred * stride
        else:
            bbox_pred = bbox_pred.exp()
        return cls_score, bbox_pred, centerness

    # ------------------------------------------------------------------ targets
    def get_targets(self, points: List[Tensor],
                    batch_gt_instances: List[InstanceData]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per level, over all images (image-major): labels (B * N_l,) long (``num_classes`` =
        background) and distance targets (B * N_l, 4) (l, t, r, b) in pixels (strides with
        ``norm_on_bbox``).

        Args:
            points: per level (N_l, 2) point coordinates (x, y), pixels.
        """
        if len(points) != len(self.regress_ranges):
            raise ValueError(f'FCOSHead: {len(points)} point levels for {len(self.regress_ranges)} regress_ranges')
        num_points = [p.size(0) for p in points]
        all_points = torch.cat(points)
        ranges = torch.cat([all_points.new_tensor(r).expand(n, 2) for r, n in zip(self.regress_ranges, num_points)])
        level_strides = [float(s[0]) for s in self.prior_generator.strides]
        strides = torch.cat([all_points.new_full((n,), s) for s, n in zip(level_strides, num_points)])
        per_image = [self._get_targets_single(gt, all_points, ranges, strides) for gt in batch_gt_instances]
        labels = [torch.cat(t) for t in zip(*[lab.split(num_points) for lab, _ in per_image])]
        targets = [torch.cat(t) for t in zip(*[box.split(num_points) for _, box in per_image])]
        if self.norm_on_bbox:
            targets = [t / s for t, s in zip(targets, level_strides)]
        return labels, targets

    def _get_targets_single(self, gt_instances: InstanceData, points: Tensor, regress_ranges: Tensor,
                            strides: Tensor) -> Tuple[Tensor, Tensor]:
        """One image: (N, 2) points, (N, 2) ranges, (N,) strides -> labels (N,), distances (N, 4)."""
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        n, g = points.size(0), gt_bboxes.size(0)
        if g == 0:
            return gt_labels.new_full((n,), self.num_classes), points.new_zeros(n, 4)
        areas = ((gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1]))[None].expand(n, g).clone()
        xs, ys = points[:, 0, None], points[:, 1, None]                                    # (N, 1)
        box = gt_bboxes[None].expand(n, g, 4)
        bbox_targets = torch.stack([xs - box[..., 0], ys - box[..., 1], box[..., 2] - xs, box[..., 3] - ys], -1)
        if self.center_sampling:
            # The positive region: a square of radius * stride around the box centre, clipped to the box.
            cx, cy = (box[..., 0] + box[..., 2]) / 2, (box[..., 1] + box[..., 3]) / 2
            r = strides[:, None] * self.center_sample_radius
            x1, y1 = torch.maximum(cx - r, box[..., 0]), torch.maximum(cy - r, box[..., 1])
            x2, y2 = torch.minimum(cx + r, box[..., 2]), torch.minimum(cy + r, box[..., 3])
            inside_gt = torch.stack([xs - x1, ys - y1, x2 - xs, y2 - ys], -1).min(-1)[0] > 0
        else:
            inside_gt = bbox_targets.min(-1)[0] > 0
        max_dist = bbox_targets.max(-1)[0]
        in_range = (max_dist >= regress_ranges[:, 0, None]) & (max_dist <= regress_ranges[:, 1, None])
        # Ambiguous points go to the gt of smallest area.
        areas[~inside_gt] = INF
        areas[~in_range] = INF
        min_area, min_inds = areas.min(dim=1)
        labels = gt_labels[min_inds].clone()
        labels[min_area == INF] = self.num_classes
        return labels, bbox_targets[torch.arange(n, device=points.device), min_inds]

    # ------------------------------------------------------------------ losses
    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor], centernesses: List[Tensor],
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore=None) -> dict:
        """``loss_cls`` (focal, / positives), ``loss_bbox`` (IoU on decoded boxes, weighted by the
        centerness targets, / their sum), ``loss_centerness`` (BCE, / positives); scalars."""
        num_imgs = cls_scores[0].size(0)
        if len(batch_gt_instances) != num_imgs:
            raise ValueError(f'FCOSHead: {num_imgs} images in the features but {len(batch_gt_instances)} gt_instances')
        points = self.prior_generator.grid_priors([tuple(s.shape[-2:]) for s in cls_scores],
                                                  dtype=bbox_preds[0].dtype, device=bbox_preds[0].device)
        labels, bbox_targets = self.get_targets(points, batch_gt_instances)
        flat_cls = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels) for c in cls_scores])
        flat_bbox = torch.cat([b.permute(0, 2, 3, 1).reshape(-1, 4) for b in bbox_preds])
        flat_ctr = torch.cat([c.permute(0, 2, 3, 1).reshape(-1) for c in centernesses])
        flat_labels, flat_targets = torch.cat(labels), torch.cat(bbox_targets)
        flat_points = torch.cat([p.repeat(num_imgs, 1) for p in points])

        pos = ((flat_labels >= 0) & (flat_labels < self.num_classes)).nonzero().squeeze(1)
        num_pos = max(float(pos.numel()), 1.0)
        loss_cls = self.loss_cls(flat_cls, flat_labels, avg_factor=num_pos)
        pos_bbox, pos_ctr, pos_targets = flat_bbox[pos], flat_ctr[pos], flat_targets[pos]
        ctr_targets = centerness_target(pos_targets)
        ctr_denorm = max(float(ctr_targets.sum().detach()), 1e-6)
        if pos.numel() > 0:
            pos_points = flat_points[pos]
            loss_bbox = self.loss_bbox(self.bbox_coder.decode(pos_points, pos_bbox),
                                       self.bbox_coder.decode(pos_points, pos_targets),
                                       weight=ctr_targets, avg_factor=ctr_denorm)
            loss_centerness = self.loss_centerness(pos_ctr, ctr_targets, avg_factor=num_pos)
        else:
            # Zero, but connected to the graph so every parameter gets a (zero) gradient.
            loss_bbox, loss_centerness = pos_bbox.sum(), pos_ctr.sum()
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_centerness=loss_centerness)

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None, batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[dict] = None, rescale: bool = False) -> List[InstanceData]:
        """As ``AnchorFreeHead.predict_by_feat`` with the centernesses as score factors: a box's
        score is ``sigmoid(cls) * sigmoid(centerness)``."""
        return super().predict_by_feat(cls_scores, bbox_preds, score_factors, batch_img_metas, cfg, rescale)
