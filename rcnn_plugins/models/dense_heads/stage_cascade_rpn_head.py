"""``StageCascadeRPNHead``: one stage of the Cascade RPN (Vu et al., 2019), MMDetection 3.x keys.

A stage is an RPN whose 3x3 conv is an :class:`~rcnn_plugins.models.layers.adaptive_conv.AdaptiveConv`
(``rpn_conv.conv``) aligned to the stage's anchors, a box regressor ``rpn_reg`` and, when
``with_cls``, an objectness classifier ``rpn_cls``. Unlike ``RPNHead`` its anchors are per image:
stage 1 uses the generator's anchors, later stages the boxes the previous stage regressed.

Anchors travel as one tensor per level of shape (B, H_l*W_l, 4) (one anchor per location,
row-major y, x), in input pixels.
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...registry import MODELS
from ...structures import DetDataSample
from ..layers.adaptive_conv import AdaptiveConv, anchor_offsets
from ..task_modules.assigners.region_assigner import RegionAssigner
from ..task_modules.samplers.pseudo_sampler import PseudoSampler
from ..utils import unpack_gt_instances
from .rpn_head import RPNHead

Levels = List[Tensor]


@MODELS.register_module()
class StageCascadeRPNHead(RPNHead):
    """One Cascade RPN stage.

    Args:
        in_channels: channels of the feature maps.
        anchor_generator: one base anchor per location (scales=[8], ratios=[1.0], MMDetection's default).
        adapt_cfg: ``dict(type='dilation', dilation=3)`` or ``dict(type='offset')`` (AdaptiveConv).
        bridged_feature: pass the adapted features (after the conv and ReLU) to the next stage.
        with_cls: have an objectness branch ``rpn_cls`` (the first stage regresses only).
        **kwargs: ``RPNHead`` / ``AnchorHead`` arguments (feat_channels, bbox_coder, reg_decoded_bbox,
            loss_cls, loss_bbox, train_cfg, test_cfg).
    """

    def __init__(self, in_channels: int,
                 anchor_generator: dict = dict(type='AnchorGenerator', scales=[8], ratios=[1.0],
                                               strides=[4, 8, 16, 32, 64]),
                 adapt_cfg: dict = dict(type='dilation', dilation=3), bridged_feature: bool = False,
                 with_cls: bool = True, init_cfg=None, **kwargs) -> None:
        self.with_cls = with_cls
        self.adapt_cfg = dict(adapt_cfg)
        self.bridged_feature = bridged_feature
        if init_cfg is None:
            # MMDetection: Normal(0.01) on the predictors; the adaptive conv inits itself the same way.
            init_cfg = dict(type='Normal', std=0.01,
                            override=[dict(name='rpn_reg')] + ([dict(name='rpn_cls')] if with_cls else []))
        super().__init__(in_channels=in_channels, anchor_generator=anchor_generator, init_cfg=init_cfg, **kwargs)
        if self.num_base_priors != 1:
            raise ValueError(f'StageCascadeRPNHead: the anchor generator must give one anchor per location '
                             f'(one scale, one ratio), got {self.num_base_priors}')
        self.anchor_strides = [s[0] if isinstance(s, (tuple, list)) else s for s in self.prior_generator.strides]
        self.anchor_scales = list(anchor_generator['scales']) if isinstance(anchor_generator, dict) else \
            [float(self.prior_generator.scales[0])]

    def _init_layers(self) -> None:
        cfg = copy.deepcopy(self.adapt_cfg)
        cfg['adapt_type'] = cfg.pop('type', 'dilation')
        self.rpn_conv = AdaptiveConv(self.in_channels, self.feat_channels, **cfg)
        if self.with_cls:
            self.rpn_cls = nn.Conv2d(self.feat_channels, self.num_base_priors * self.cls_out_channels, 1)
        self.rpn_reg = nn.Conv2d(self.feat_channels, self.num_base_priors * 4, 1)

    def forward_single(self, x: Tensor, offset: Optional[Tensor] = None):
        """(B, C, H, W), offsets (B, H*W, 18) or None -> (next features (B, C', H, W), cls (B, 1, H, W)
        or None, deltas (B, 4, H, W))."""
        feat = F.relu(self.rpn_conv(x, offset))
        return (feat if self.bridged_feature else x), (self.rpn_cls(feat) if self.with_cls else None), \
            self.rpn_reg(feat)

    def forward(self, x: Sequence[Tensor], offset_list: Optional[Levels] = None):
        """Per level features -> (features for the next stage, cls_scores, bbox_preds), lists over levels."""
        x = list(x)
        if offset_list is None:
            offset_list = [None] * len(x)
        outs = [self.forward_single(f, o) for f, o in zip(x, offset_list)]
        return [o[0] for o in outs], [o[1] for o in outs], [o[2] for o in outs]

    # ------------------------------------------------------------------ anchors
    def get_anchors(self, featmap_sizes, batch_img_metas: Sequence[dict], device='cpu') -> Tuple[Levels, Levels]:
        """Generator anchors per level (B, N_l, 4) and valid flags per level (B, N_l) bool."""
        sizes = [tuple(s) for s in featmap_sizes]
        priors = self.prior_generator.grid_priors(sizes, device=device)
        b = len(batch_img_metas)
        anchors = [p[None].expand(b, -1, -1).contiguous() for p in priors]
        flags = [[] for _ in sizes]
        for meta in batch_img_metas:
            pad = meta.get('pad_shape', meta.get('batch_input_shape', meta['img_shape']))[:2]
            for lvl, f in enumerate(self.prior_generator.valid_flags(sizes, pad, device=device)):
                flags[lvl].append(f)
        return anchors, [torch.stack(f) for f in flags]

    def anchor_offset(self, anchors: Levels, featmap_sizes) -> Levels:
        """Per level (B, N_l, 18) offsets of the adaptive conv (``'offset'`` mode)."""
        return [anchor_offsets(a, s, tuple(fs)) for a, s, fs in zip(anchors, self.anchor_strides, featmap_sizes)]

    def stage_forward(self, x: Sequence[Tensor], anchors: Levels):
        """Run the stage on its anchors: offsets only in ``'offset'`` mode (the dilated conv needs none)."""
        offsets = self.anchor_offset(anchors, [f.shape[-2:] for f in x]) \
            if self.adapt_cfg.get('type') == 'offset' else None
        return self(x, offsets)

    def refine_bboxes(self, anchors: Levels, bbox_preds: Levels,
                      batch_img_metas: Optional[Sequence[dict]] = None) -> Levels:
        """The next stage's anchors: this stage's (detached) deltas decoded on its anchors, clipped to
        each image's ``img_shape`` (not clipped without metas). Per level (B, N_l, 4)."""
        max_shape = None if batch_img_metas is None else [tuple(m['img_shape'][:2]) for m in batch_img_metas]
        return [self.bbox_coder.decode(a, p.detach().permute(0, 2, 3, 1).reshape(a.size(0), -1, 4),
                                       max_shape=max_shape)
                for a, p in zip(anchors, bbox_preds)]

    # ------------------------------------------------------------------ training
    def _region_targets_single(self, flat_anchors, flags, gt, meta, featmap_sizes, num_level_anchors):
        """Stage-1 targets of one image with the RegionAssigner (same outputs as ``_get_targets_single``)."""
        assign = self.assigner.assign(
            InstanceData(priors=flat_anchors, valid_flags=flags), gt, meta, featmap_sizes, num_level_anchors,
            self.anchor_scales[0], self.anchor_strides, allowed_border=self.train_cfg.get('allowed_border', -1))
        sampling = self.sampler.sample(assign, InstanceData(priors=flat_anchors), gt)
        return self._targets_from_sampling(flat_anchors.size(0), sampling, sampling.pos_inds, sampling.neg_inds,
                                           flat_anchors)

    def stage_loss(self, anchors: Levels, valid_flags: Levels, cls_scores, bbox_preds: Levels,
                   batch_gt_instances, batch_img_metas) -> dict:
        """Losses of this stage on its per-image anchors: ``loss_rpn_reg`` (and ``loss_rpn_cls`` with
        ``with_cls``), each a list of one scalar per level.

        Without negatives in the average (no sampler) the losses are divided by the number of
        anchors / 200, as MMDetection (the region assigner's positives are few and vary a lot).
        """
        if self.train_cfg is None:
            raise ValueError('StageCascadeRPNHead.loss needs train_cfg (one per stage in train_cfg.rpn)')
        featmap_sizes = [tuple(p.shape[-2:]) for p in bbox_preds]
        sizes = [a.size(1) for a in anchors]
        flat = torch.cat(anchors, 1)
        flags = torch.cat(valid_flags, 1)
        targets = []
        for i, (gt, meta) in enumerate(zip(batch_gt_instances, batch_img_metas)):
            if isinstance(self.assigner, RegionAssigner):
                out = self._region_targets_single(flat[i], flags[i], gt, meta, featmap_sizes, sizes)
            else:
                out = self._get_targets_single(flat[i], flags[i], gt, meta)
            targets.append(out)
        labels, label_weights, bbox_targets, bbox_weights, avg_factors = zip(*targets)
        avg_factor = sum(avg_factors)
        if isinstance(self.sampler, PseudoSampler):
            avg_factor = flat.size(0) * flat.size(1) / 200.0
        split = [torch.stack(t).split(sizes, dim=1) for t in (labels, label_weights, bbox_targets, bbox_weights)]
        losses_cls, losses_reg = [], []
        for lvl, pred in enumerate(bbox_preds):
            lab, lab_w, tgt, tgt_w = (t[lvl] for t in split)
            pred = pred.permute(0, 2, 3, 1).reshape(-1, 4).float()
            if self.reg_decoded_bbox:
                pred = self.bbox_coder.decode(anchors[lvl].reshape(-1, 4), pred)
            losses_reg.append(self.loss_bbox(pred, tgt.reshape(-1, 4), tgt_w.reshape(-1, 4), avg_factor=avg_factor))
            if self.with_cls:
                score = cls_scores[lvl].permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels).float()
                losses_cls.append(self.loss_cls(score, lab.reshape(-1), lab_w.reshape(-1), avg_factor=avg_factor))
        return dict(loss_rpn_cls=losses_cls, loss_rpn_reg=losses_reg) if self.with_cls else \
            dict(loss_rpn_reg=losses_reg)

    def loss(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample]) -> dict:
        """This stage alone on the generator's anchors."""
        return self.loss_and_predict(x, batch_data_samples, with_predictions=False)[0]

    def loss_and_predict(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample],
                         proposal_cfg: Optional[dict] = None, with_predictions: bool = True):
        x = list(x)
        gts, _, metas = unpack_gt_instances(batch_data_samples)
        anchors, flags = self.get_anchors([f.shape[-2:] for f in x], metas, device=x[0].device)
        _, cls_scores, bbox_preds = self.stage_forward(x, anchors)
        losses = self.stage_loss(anchors, flags, cls_scores, bbox_preds, gts, metas)
        preds = self.predict_by_feat(anchors, cls_scores, bbox_preds, metas, cfg=proposal_cfg) \
            if with_predictions else None
        return losses, preds

    # ------------------------------------------------------------------ inference
    def predict(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample], rescale: bool = False):
        x = list(x)
        metas = [s.metainfo for s in batch_data_samples]
        anchors, _ = self.get_anchors([f.shape[-2:] for f in x], metas, device=x[0].device)
        _, cls_scores, bbox_preds = self.stage_forward(x, anchors)
        return self.predict_by_feat(anchors, cls_scores, bbox_preds, metas, rescale=rescale)

    def predict_by_feat(self, anchors: Levels, cls_scores: Levels, bbox_preds: Levels,
                        batch_img_metas: List[dict], cfg: Optional[dict] = None,
                        rescale: bool = False) -> List[InstanceData]:
        """Proposals of every image on its own anchors (per level (B, N_l, 4)); as ``RPNHead``'s."""
        if not self.with_cls:
            raise ValueError('StageCascadeRPNHead: a stage without rpn_cls (with_cls=False) has no scores '
                             'to make proposals; make the last stage with_cls=True')
        image_anchors = [[a[i] for a in anchors] for i in range(len(batch_img_metas))]
        return self.proposals_by_feat(cls_scores, bbox_preds, image_anchors, batch_img_metas, cfg, rescale)
