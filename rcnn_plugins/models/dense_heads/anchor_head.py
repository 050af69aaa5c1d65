"""``AnchorHead``: the base of anchor-based dense heads (RPNHead builds on it).

It owns what every anchor head shares: the anchor generator, box coder, losses, the assigner and
sampler of ``train_cfg``, the training targets of all pyramid levels at once, and the losses, one
value per level as MMDetection returns them.
Subclasses provide the convolutions (``_init_layers`` / ``forward_single``) and post-processing
(``predict_by_feat``).

Tensor layout: a level's head output ``(B, A*C, H, W)`` is flattened with
``permute(0, 2, 3, 1).reshape(B, H*W*A, C)``, which matches the anchor order of
``AnchorGenerator.grid_priors`` (row-major over y, x, then the A base anchors).
"""
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...registry import MODELS, TASK_UTILS, build_or_use
from ...structures import DetDataSample
from ..utils import dense_head_loss, require_cfg


def check_no_gt_proposals(sampler, where: str) -> None:
    """A dense head samples among its priors only: a sampler that prepends the gt boxes as extra
    candidates (``add_gt_as_proposals=True``, the RoI samplers' default) would index past them."""
    if getattr(sampler, 'add_gt_as_proposals', False):
        raise ValueError(f'{where}: add_gt_as_proposals=True is not supported in a dense head (the gts are not '
                         'priors); set add_gt_as_proposals=False, as MMDetection\'s RPN configs do')


class AnchorHead(BaseModule):
    """Anchor-based dense head: per level a ``conv_cls`` and a ``conv_reg`` 1x1 conv.

    Args:
        num_classes: number of foreground classes (1 for an RPN).
        in_channels: channels of each input feature map.
        feat_channels: channels of the head's hidden convs (used by subclasses).
        anchor_generator, bbox_coder, loss_cls, loss_bbox: configs built from TASK_UTILS / MODELS.
        reg_decoded_bbox: regress decoded boxes (for IoU-type losses) instead of deltas.
        train_cfg: needs ``assigner``; optional ``sampler`` (default ``PseudoSampler``: no sampling),
            ``allowed_border`` (-1: every anchor
            of the padded image counts; >= 0: only anchors inside the image plus that many pixels)
            and ``pos_weight`` (<= 0: 1).
        test_cfg: post-processing settings used by ``predict``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 feat_channels: int = 256,
                 anchor_generator: dict = dict(type='AnchorGenerator', scales=[8, 16, 32],
                                               ratios=[0.5, 1.0, 2.0], strides=[4, 8, 16, 32, 64]),
                 bbox_coder: dict = dict(type='DeltaXYWHBBoxCoder', clip_border=True,
                                         target_means=(.0, .0, .0, .0), target_stds=(1.0, 1.0, 1.0, 1.0)),
                 reg_decoded_bbox: bool = False,
                 loss_cls: dict = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 loss_bbox: dict = dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg=dict(type='Normal', layer='Conv2d', std=0.01)) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'{type(self).__name__}: num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.loss_cls = build_or_use(MODELS, loss_cls)
        self.use_sigmoid_cls = getattr(self.loss_cls, 'use_sigmoid', False)
        # Sigmoid scores one logit per class; softmax adds a background logit.
        self.cls_out_channels = num_classes if self.use_sigmoid_cls else num_classes + 1
        self.reg_decoded_bbox = reg_decoded_bbox

        self.prior_generator = build_or_use(TASK_UTILS, anchor_generator)
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        self.bbox_coder = build_or_use(TASK_UTILS, bbox_coder)
        self.loss_bbox = build_or_use(MODELS, loss_bbox)

        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg is not None:
            require_cfg(train_cfg, ('assigner',), f'{type(self).__name__} train_cfg')
            self.assigner = build_or_use(TASK_UTILS, train_cfg['assigner'])
            # No sampler configured: every assigned anchor counts (MMDetection's PseudoSampler
            # default, e.g. with FocalLoss); the losses are then averaged over the positives.
            self.sampler = build_or_use(TASK_UTILS, train_cfg.get('sampler') or dict(type='PseudoSampler'))
            check_no_gt_proposals(self.sampler, f'{type(self).__name__} train_cfg.sampler')
        self._init_layers()

    def _init_layers(self) -> None:
        self.conv_cls = nn.Conv2d(self.in_channels, self.num_base_priors * self.cls_out_channels, 1)
        self.conv_reg = nn.Conv2d(self.in_channels, self.num_base_priors * 4, 1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """(B, C_in, H, W) -> cls score (B, A*cls_out_channels, H, W), deltas (B, A*4, H, W)."""
        return self.conv_cls(x), self.conv_reg(x)

    def forward(self, x: Iterable[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Run the head on every level: returns (cls_scores, bbox_preds), one tensor per level.

        ``x`` may be any iterable of (B, C_in, H_l, W_l) maps (a tuple, a list, a generator), as
        MMDetection iterates over it.
        """
        x = list(x)
        if len(x) != self.prior_generator.num_levels:
            raise ValueError(f'{type(self).__name__}: got {len(x)} feature levels but the anchor generator '
                             f'has {self.prior_generator.num_levels} strides; make them agree')
        outs = [self.forward_single(feat) for feat in x]
        return [o[0] for o in outs], [o[1] for o in outs]

    # ------------------------------------------------------------------ training
    def loss(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample]) -> dict:
        return dense_head_loss(self, x, batch_data_samples)

    def loss_and_predict(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample],
                         proposal_cfg: Optional[dict] = None) -> Tuple[dict, List[InstanceData]]:
        """Loss and (detached) predictions from one forward pass; ``proposal_cfg`` overrides test_cfg."""
        return dense_head_loss(self, x, batch_data_samples, proposal_cfg, with_predictions=True)

    def _get_targets_single(self, flat_anchors: Tensor, valid_flags: Tensor, gt_instances: InstanceData,
                    img_meta: dict, gt_instances_ignore: Optional[InstanceData] = None):
        """Targets of one image over all N anchors of all levels.

        Args:
            flat_anchors: (N, 4) anchors of the padded batch, levels concatenated.
            valid_flags: (N,) bool, anchors that lie on this image's padded area.

        Returns:
            labels (N,) long (``num_classes`` = background), label_weights (N,),
            bbox_targets (N, 4), bbox_weights (N, 4), avg_factor (sampled anchors of this image).
        """
        allowed_border = self.train_cfg.get('allowed_border', -1)
        inside = valid_flags
        if allowed_border >= 0:
            h, w = img_meta['img_shape'][:2]
            inside = inside & (flat_anchors[:, 0] >= -allowed_border) & (flat_anchors[:, 1] >= -allowed_border) \
                & (flat_anchors[:, 2] < w + allowed_border) & (flat_anchors[:, 3] < h + allowed_border)
        inside_inds = inside.nonzero().squeeze(1)
        if inside_inds.numel() == 0:
            # Zero losses here would hide a broken pipeline (images resized far too small, or
            # anchors far too large); MMDetection raises here too.
            h, w = img_meta['img_shape'][:2]
            raise ValueError(f'{type(self).__name__}: no anchor lies inside image '
                             f'{img_meta.get("img_path", "(no img_path in its metainfo)")} of size {h}x{w} '
                             f'(h x w) with train_cfg allowed_border={allowed_border}. Check the image size '
                             'and the anchor sizes, or set allowed_border=-1 to use every anchor.')
        pred_instances = InstanceData(priors=flat_anchors[inside_inds])
        assign_result = self.assigner.assign(pred_instances, gt_instances, gt_instances_ignore)
        sampling = self.sampler.sample(assign_result, pred_instances, gt_instances)

        # Sampled indices refer to the inside subset: map them back to all N anchors.
        return self._targets_from_sampling(flat_anchors.size(0), sampling, inside_inds[sampling.pos_inds],
                                           inside_inds[sampling.neg_inds], flat_anchors)

    def _targets_from_sampling(self, n: int, sampling, pos_inds: Tensor, neg_inds: Tensor, like: Tensor):
        """Targets for all ``n`` anchors at once from one image's sampling result: positives at
        ``pos_inds`` get their gt's label and box target (decoded boxes with ``reg_decoded_bbox``,
        else coder deltas) and weight 1 (``pos_weight`` when > 0), negatives at ``neg_inds`` weight 1;
        the rest (unsampled, or outside the image) is background with weight 0.

        Returns:
            labels (n,) long, label_weights (n,), bbox_targets (n, 4), bbox_weights (n, 4), avg_factor.
        """
        labels = like.new_full((n,), self.num_classes, dtype=torch.long)
        label_weights = like.new_zeros(n)
        bbox_targets = like.new_zeros(n, 4)
        bbox_weights = like.new_zeros(n, 4)
        if self.reg_decoded_bbox:
            pos_targets = sampling.pos_gt_bboxes
        else:
            pos_targets = self.bbox_coder.encode(sampling.pos_priors, sampling.pos_gt_bboxes)
        bbox_targets[pos_inds] = pos_targets.to(bbox_targets.dtype)
        bbox_weights[pos_inds] = 1.0
        labels[pos_inds] = sampling.pos_gt_labels.long()
        pos_weight = self.train_cfg.get('pos_weight', -1)
        label_weights[pos_inds] = 1.0 if pos_weight <= 0 else float(pos_weight)
        label_weights[neg_inds] = 1.0
        return labels, label_weights, bbox_targets, bbox_weights, sampling.avg_factor

    def targets_per_image(self, flat_anchors: Tensor, featmap_sizes: Sequence[Tuple[int, int]],
                          batch_gt_instances: Sequence[InstanceData], batch_img_metas: Sequence[dict],
                          batch_gt_instances_ignore: Optional[Sequence[Optional[InstanceData]]] = None) -> list:
        """The training targets of every image (what :meth:`loss_by_feat` computes before its losses).

        Args:
            flat_anchors: (N, 4) anchors of the padded batch, levels concatenated (``grid_priors``).
            featmap_sizes: (H_l, W_l) of each level, for the valid flags of each image's padded area.
            batch_gt_instances, batch_img_metas, batch_gt_instances_ignore: per image.

        Returns:
            One tuple per image: labels (N,) long (``num_classes`` = background), label_weights (N,),
            bbox_targets (N, 4), bbox_weights (N, 4), avg_factor.
        """
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * len(batch_gt_instances)
        targets = []
        for gt, meta, ignore in zip(batch_gt_instances, batch_img_metas, batch_gt_instances_ignore):
            pad_shape = meta.get('pad_shape', meta.get('batch_input_shape', meta['img_shape']))[:2]
            flags = torch.cat(self.prior_generator.valid_flags(featmap_sizes, pad_shape, device=flat_anchors.device))
            targets.append(self._get_targets_single(flat_anchors, flags, gt, meta, ignore))
        return targets

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[Optional[InstanceData]]] = None) -> dict:
        """Classification and box losses of every level, over all images.

        Targets are computed once for all levels; each level's loss is then averaged over the
        number of sampled anchors of the whole batch, so the per-level values add up to the
        loss over all anchors (MMDetection's ``loss_by_feat``, which mmengine's ``parse_losses``
        sums).

        Returns:
            dict(loss_cls=[L scalars], loss_bbox=[L scalars]), one per pyramid level.
        """
        if self.train_cfg is None:
            raise ValueError(f'{type(self).__name__}.loss needs train_cfg (assigner, sampler); '
                             'build the head with train_cfg or through a detector with train_cfg.rpn')
        num_imgs = cls_scores[0].size(0)
        if len(batch_gt_instances) != num_imgs or len(batch_img_metas) != num_imgs:
            raise ValueError(f'{type(self).__name__}: {num_imgs} images in the features but '
                             f'{len(batch_gt_instances)} gt_instances / {len(batch_img_metas)} metas')
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * num_imgs
        device = cls_scores[0].device
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        mlvl_anchors = self.prior_generator.grid_priors(featmap_sizes, device=device)
        targets = self.targets_per_image(torch.cat(mlvl_anchors), featmap_sizes, batch_gt_instances,
                                         batch_img_metas, batch_gt_instances_ignore)
        labels, label_weights, bbox_targets, bbox_weights, avg_factors = zip(*targets)
        avg_factor = sum(avg_factors)

        # (B, N, ...) targets split into levels: level l is (B, N_l, ...), B-major as its scores.
        level_sizes = [a.size(0) for a in mlvl_anchors]
        mlvl_targets = [torch.stack(t).split(level_sizes, dim=1)
                        for t in (labels, label_weights, bbox_targets, bbox_weights)]
        losses_cls, losses_bbox = [], []
        for lvl, (cls_score, bbox_pred) in enumerate(zip(cls_scores, bbox_preds)):
            lvl_labels, lvl_label_weights, lvl_bbox_targets, lvl_bbox_weights = (t[lvl] for t in mlvl_targets)
            cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels).float()
            bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4).float()
            if self.reg_decoded_bbox:
                bbox_pred = self.bbox_coder.decode(mlvl_anchors[lvl].repeat(num_imgs, 1), bbox_pred)
            losses_cls.append(self.loss_cls(cls_score, lvl_labels.reshape(-1), lvl_label_weights.reshape(-1),
                                            avg_factor=avg_factor))
            losses_bbox.append(self.loss_bbox(bbox_pred, lvl_bbox_targets.reshape(-1, 4),
                                              lvl_bbox_weights.reshape(-1, 4), avg_factor=avg_factor))
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox)

    # ------------------------------------------------------------------ inference
    def predict(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample],
                rescale: bool = False) -> List[InstanceData]:
        metas = [s.metainfo for s in batch_data_samples]
        return self.predict_by_feat(*self(x), batch_img_metas=metas, rescale=rescale)

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor], batch_img_metas: List[dict],
                        cfg: Optional[dict] = None, rescale: bool = False) -> List[InstanceData]:
        raise NotImplementedError(f'{type(self).__name__} has no post-processing; use a subclass such as RPNHead')
