"""``SABLHead``: Side-Aware Boundary Localization box head (Wang et al., ECCV 2020; MMDetection 3.x
names, arguments, defaults and state_dict keys).

Classification is a plain fc branch on the flattened RoI feature. Localisation treats each of the
four sides on its own: convs on the (C, 7, 7) RoI feature, attention pooling along y (for the x
sides) and along x (for the y sides) to a (C, 7) row / column, a 1-D conv, a stride-2 transposed
conv up to ``num_buckets`` = 14 positions, then per position a shared linear layer gives a bucket
logit and a fine offset. The left half of the x positions are the left side's buckets (counted
from the left edge inwards), the right half flipped are the right side's; same for top / bottom.
Targets and decoding are :class:`BucketingBBoxCoder`'s; the decoded box's localisation confidence
multiplies the class scores before NMS (bucketing-guided rescoring).

``bbox_pred`` is a pair ``(bucket_cls_preds (R, 4S), bucket_offset_preds (R, 4S))``, S = side_num,
laid out [left, right, top, bottom]; RoI heads split it per image with :meth:`bbox_pred_split`.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ....registry import MODELS, TASK_UTILS, build_or_use
from ...layers.nms import class_wise_nms
from ...losses import accuracy
from ...utils import empty_instances, require_cfg


@MODELS.register_module()
class SABLHead(BaseModule):
    """Args (MMDetection's):
        num_classes: foreground classes; background logit last.
        cls_in_channels / reg_in_channels: channels of the pooled RoI feature seen by each branch.
        roi_feat_size: side of the pooled features (7).
        reg_feat_up_ratio: transposed-conv upsampling of the side features; ``roi_feat_size *
            reg_feat_up_ratio`` must equal the coder's ``num_buckets``.
        reg_pre_kernel / reg_pre_num: 2-D convs before the attention pooling.
        reg_post_kernel / reg_post_num: 1-D convs (1 x k, k x 1) after it.
        cls_out_channels / num_cls_fcs: the classification fcs.
        reg_offset_out_channels / reg_cls_out_channels / num_reg_fcs: per-position fcs of the offset
            and bucket branches (0 by default: one linear layer each).
        reg_class_agnostic: must be True (one box per RoI).
        norm_cfg: norm of the regression convs.
        bbox_coder: ``BucketingBBoxCoder`` (num_buckets=14, scale_factor=1.7).
        loss_cls: softmax classification loss; loss_bbox_cls: sigmoid loss on the bucket logits;
        loss_bbox_reg: loss on the fine offsets (SmoothL1, beta 0.1).
    """

    def __init__(self, num_classes: int, cls_in_channels: int = 256, reg_in_channels: int = 256,
                 roi_feat_size: int = 7, reg_feat_up_ratio: int = 2, reg_pre_kernel: int = 3,
                 reg_post_kernel: int = 3, reg_pre_num: int = 2, reg_post_num: int = 1,
                 cls_out_channels: int = 1024, reg_offset_out_channels: int = 256,
                 reg_cls_out_channels: int = 256, num_cls_fcs: int = 1, num_reg_fcs: int = 0,
                 reg_class_agnostic: bool = True, norm_cfg: Optional[dict] = None,
                 bbox_coder: dict = dict(type='BucketingBBoxCoder', num_buckets=14, scale_factor=1.7),
                 loss_cls: dict = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 loss_bbox_cls: dict = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 loss_bbox_reg: dict = dict(type='SmoothL1Loss', beta=0.1, loss_weight=1.0),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not reg_class_agnostic:
            raise ValueError('SABLHead: reg_class_agnostic must be True (the side buckets are shared by all classes)')
        reg_feat_up_ratio = int(reg_feat_up_ratio)
        if reg_feat_up_ratio < 2:
            raise ValueError(f'SABLHead: reg_feat_up_ratio must be >= 2, got {reg_feat_up_ratio}')
        self.bbox_coder = build_or_use(TASK_UTILS, bbox_coder)
        self.num_buckets = self.bbox_coder.num_buckets
        self.up_reg_feat_size = roi_feat_size * reg_feat_up_ratio
        if self.up_reg_feat_size != self.num_buckets:
            raise ValueError(f'SABLHead: roi_feat_size * reg_feat_up_ratio = {self.up_reg_feat_size} must equal '
                             f'the coder\'s num_buckets = {self.num_buckets}')
        self.num_classes = num_classes
        self.cls_in_channels, self.reg_in_channels = cls_in_channels, reg_in_channels
        self.roi_feat_size, self.reg_feat_up_ratio = roi_feat_size, reg_feat_up_ratio
        self.reg_pre_num, self.reg_post_num = reg_pre_num, reg_post_num
        self.cls_out_channels = cls_out_channels
        self.reg_class_agnostic = True
        self.reg_decoded_bbox = False
        self.side_num = int(math.ceil(self.num_buckets / 2))
        self.loss_cls = build_or_use(MODELS, loss_cls)
        self.loss_bbox_cls = build_or_use(MODELS, loss_bbox_cls)
        self.loss_bbox_reg = build_or_use(MODELS, loss_bbox_reg)

        self.cls_fcs = self._fc_branch(num_cls_fcs, cls_in_channels * roi_feat_size ** 2, cls_out_channels)
        self.upsample_x = nn.ConvTranspose1d(reg_in_channels, reg_in_channels, reg_feat_up_ratio,
                                             stride=reg_feat_up_ratio)
        self.upsample_y = nn.ConvTranspose1d(reg_in_channels, reg_in_channels, reg_feat_up_ratio,
                                             stride=reg_feat_up_ratio)
        relu = dict(type='ReLU')
        self.reg_pre_convs = nn.ModuleList(
            ConvModule(reg_in_channels, reg_in_channels, reg_pre_kernel, padding=reg_pre_kernel // 2,
                       norm_cfg=norm_cfg, act_cfg=relu) for _ in range(reg_pre_num))
        self.reg_post_conv_xs = nn.ModuleList(
            ConvModule(reg_in_channels, reg_in_channels, (1, reg_post_kernel), padding=(0, reg_post_kernel // 2),
                       norm_cfg=norm_cfg, act_cfg=relu) for _ in range(reg_post_num))
        self.reg_post_conv_ys = nn.ModuleList(
            ConvModule(reg_in_channels, reg_in_channels, (reg_post_kernel, 1), padding=(reg_post_kernel // 2, 0),
                       norm_cfg=norm_cfg, act_cfg=relu) for _ in range(reg_post_num))
        self.reg_conv_att_x = nn.Conv2d(reg_in_channels, 1, 1)
        self.reg_conv_att_y = nn.Conv2d(reg_in_channels, 1, 1)
        self.fc_cls = nn.Linear(cls_out_channels, num_classes + 1)
        self.relu = nn.ReLU(inplace=True)
        self.reg_cls_fcs = self._fc_branch(num_reg_fcs, reg_in_channels, reg_cls_out_channels)
        self.reg_offset_fcs = self._fc_branch(num_reg_fcs, reg_in_channels, reg_offset_out_channels)
        self.fc_reg_cls = nn.Linear(reg_cls_out_channels if num_reg_fcs else reg_in_channels, 1)
        self.fc_reg_offset = nn.Linear(reg_offset_out_channels if num_reg_fcs else reg_in_channels, 1)
        if init_cfg is None:
            self.init_cfg = [
                dict(type='Xavier', layer='Linear', distribution='uniform',
                     override=[dict(type='Normal', name='reg_conv_att_x', std=0.01),
                               dict(type='Normal', name='reg_conv_att_y', std=0.01),
                               dict(type='Normal', name='fc_reg_cls', std=0.01),
                               dict(type='Normal', name='fc_cls', std=0.01),
                               dict(type='Normal', name='fc_reg_offset', std=0.001)]),
                dict(type='Kaiming', distribution='normal',
                     override=[dict(name='upsample_x'), dict(name='upsample_y')])]

    @staticmethod
    def _fc_branch(num_fcs: int, in_features: int, out_features: int) -> nn.ModuleList:
        return nn.ModuleList(nn.Linear(in_features if i == 0 else out_features, out_features) for i in range(num_fcs))

    # ------------------------------------------------------------------ forward
    def cls_forward(self, x: Tensor) -> Tensor:
        """(R, C, 7, 7) -> (R, num_classes + 1) logits."""
        x = x.flatten(1)
        for fc in self.cls_fcs:
            x = self.relu(fc(x))
        return self.fc_cls(x)

    def side_aware_feature_extractor(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """(R, C, 7, 7) -> x-side features (R, 14, C) and y-side features (R, 14, C)."""
        for conv in self.reg_pre_convs:
            x = conv(x)
        # Attention pooling: a sigmoid map normalised over y gives a (C, 7) row for the x sides, and
        # normalised over x a (C, 7) column for the y sides.
        att_x = self.reg_conv_att_x(x).sigmoid()
        att_y = self.reg_conv_att_y(x).sigmoid()
        fx = (x * (att_x / att_x.sum(dim=2, keepdim=True))).sum(dim=2)  # (R, C, 7) along x
        fy = (x * (att_y / att_y.sum(dim=3, keepdim=True))).sum(dim=3)  # (R, C, 7) along y
        fx, fy = fx.unsqueeze(2), fy.unsqueeze(3)
        for conv_x, conv_y in zip(self.reg_post_conv_xs, self.reg_post_conv_ys):
            fx, fy = conv_x(fx), conv_y(fy)
        fx = self.relu(self.upsample_x(fx.squeeze(2)))
        fy = self.relu(self.upsample_y(fy.squeeze(3)))
        return fx.transpose(1, 2).contiguous(), fy.transpose(1, 2).contiguous()

    def reg_pred(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """(R, 14, C) side features -> offset (R, 14) and bucket logit (R, 14) per position."""
        x_offset = x_cls = x.reshape(-1, self.reg_in_channels)
        for fc in self.reg_offset_fcs:
            x_offset = self.relu(fc(x_offset))
        for fc in self.reg_cls_fcs:
            x_cls = self.relu(fc(x_cls))
        return self.fc_reg_offset(x_offset).view(x.size(0), -1), self.fc_reg_cls(x_cls).view(x.size(0), -1)

    def side_aware_split(self, feat: Tensor) -> Tensor:
        """(R, 14) positions -> (R, 2S): the first S from the low edge inwards, the last S from the
        high edge inwards (flipped), the coder's per-side bucket order."""
        low = feat[:, :int(math.ceil(self.up_reg_feat_size / 2))]
        high = feat[:, self.up_reg_feat_size // 2:].flip(dims=(1,))
        return torch.cat([low, high], dim=-1)

    def reg_forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """(R, C, 7, 7) -> bucket logits (R, 4S), offsets (R, 4S), [left, right, top, bottom]."""
        fx, fy = self.side_aware_feature_extractor(x)
        offset_x, cls_x = self.reg_pred(fx)
        offset_y, cls_y = self.reg_pred(fy)
        split = self.side_aware_split
        return (torch.cat([split(cls_x), split(cls_y)], dim=-1),
                torch.cat([split(offset_x), split(offset_y)], dim=-1))

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        """(R, C, 7, 7) -> cls_score (R, num_classes + 1), bbox_pred (bucket logits (R, 4S), offsets (R, 4S))."""
        return self.cls_forward(x), self.reg_forward(x)

    @staticmethod
    def bbox_pred_split(bbox_pred: Tuple[Tensor, Tensor], num_proposals_per_img: Sequence[int]) -> tuple:
        """The batch's (bucket logits, offsets) -> per image pairs."""
        cls_preds, offset_preds = bbox_pred
        return tuple(zip(cls_preds.split(list(num_proposals_per_img)),
                         offset_preds.split(list(num_proposals_per_img))))

    # ------------------------------------------------------------------ training
    def get_targets(self, sampling_results: Sequence, rcnn_train_cfg: Optional[dict] = None) -> tuple:
        """Targets of the sampled RoIs of all images (per image positives, then negatives).

        Returns:
            labels (R,), label_weights (R,) (all 1: MMDetection's SABL ignores ``pos_weight``),
            (bucket_cls_targets (R, 4S), bucket_offset_targets (R, 4S)),
            (bucket_cls_weights (R, 4S), bucket_offset_weights (R, 4S)); zero for negatives.
        """
        labels, cls_t, cls_w, off_t, off_w = [], [], [], [], []
        width = 4 * self.side_num
        for res in sampling_results:
            pos, num_neg = res.pos_priors, res.neg_priors.size(0)
            labels.append(torch.cat([res.pos_gt_labels.long(), pos.new_full((num_neg,), self.num_classes,
                                                                             dtype=torch.long)]))
            if pos.size(0) > 0:
                offsets, offset_weights, buckets, bucket_weights = self.bbox_coder.encode(pos, res.pos_gt_bboxes)
            else:
                offsets = offset_weights = buckets = bucket_weights = pos.new_zeros(0, width)
            pad = pos.new_zeros(num_neg, width)
            for out, t in zip((cls_t, cls_w, off_t, off_w), (buckets, bucket_weights, offsets, offset_weights)):
                out.append(torch.cat([t.to(pos.dtype), pad]))
        labels = torch.cat(labels)
        return (labels, torch.ones_like(labels, dtype=torch.float32), (torch.cat(cls_t), torch.cat(off_t)),
                (torch.cat(cls_w), torch.cat(off_w)))

    def loss(self, cls_score: Tensor, bbox_pred: Tuple[Tensor, Tensor], rois: Tensor, labels: Tensor,
             label_weights: Tensor, bbox_targets: Tuple[Tensor, Tensor], bbox_weights: Tuple[Tensor, Tensor]) -> dict:
        """``loss_cls`` (over RoIs with weight > 0), ``acc``, ``loss_bbox_cls`` (sigmoid loss per bucket,
        averaged over the 4R sides) and ``loss_bbox_reg`` (offset loss averaged over the R RoIs)."""
        cls_score = cls_score.float()
        avg_factor = (label_weights > 0).sum().clamp(min=1).float()
        losses = dict(loss_cls=self.loss_cls(cls_score, labels, label_weights, avg_factor=avg_factor),
                      acc=accuracy(cls_score, labels))
        if bbox_pred is not None:
            cls_preds, offset_preds = bbox_pred
            cls_t = bbox_targets[0].reshape(-1, self.side_num)
            losses['loss_bbox_cls'] = self.loss_bbox_cls(
                cls_preds.float().reshape(-1, self.side_num), cls_t, bbox_weights[0].reshape(-1, self.side_num),
                avg_factor=max(cls_t.size(0), 1))
            losses['loss_bbox_reg'] = self.loss_bbox_reg(
                offset_preds.float(), bbox_targets[1], bbox_weights[1], avg_factor=max(bbox_targets[1].size(0), 1))
        return losses

    def loss_and_target(self, cls_score: Tensor, bbox_pred: Tuple[Tensor, Tensor], rois: Tensor,
                        sampling_results: Sequence, rcnn_train_cfg: dict) -> dict:
        """Targets from the sampling results, then ``loss``: dict(loss_bbox=losses, bbox_targets=targets)."""
        targets = self.get_targets(sampling_results, rcnn_train_cfg)
        return dict(loss_bbox=self.loss(cls_score, bbox_pred, rois, *targets), bbox_targets=targets)

    # ------------------------------------------------------------------ refinement (Cascade R-CNN)
    def regress_by_class(self, priors: Tensor, label: Tensor, bbox_pred: Tuple[Tensor, Tensor],
                         img_meta: dict) -> Tensor:
        """(N, 4) boxes of one image decoded with their (class-agnostic) bucket predictions, clipped to
        ``img_shape``; ``label`` is unused (kept for the RoI heads' interface)."""
        return self.bbox_coder.decode(priors, bbox_pred, max_shape=img_meta['img_shape'][:2])[0]

    def refine_bboxes(self, sampling_results: Sequence, bbox_results: dict,
                      batch_img_metas: List[dict]) -> Optional[List[InstanceData]]:
        """Training-time refinement for the next cascade stage: every sampled RoI decoded, the gt boxes
        added as proposals dropped. Returns per image InstanceData(bboxes); None without RoIs."""
        if bbox_results['cls_score'].numel() == 0:
            return None
        counts = [res.priors.size(0) for res in sampling_results]
        preds = self.bbox_pred_split(bbox_results['bbox_pred'], counts)
        results = []
        for res, rois, pred, meta in zip(sampling_results, bbox_results['rois'].split(counts), preds,
                                         batch_img_metas):
            bboxes = self.regress_by_class(rois[:, 1:], None, pred, meta)
            keep = torch.ones(rois.size(0), dtype=torch.bool, device=rois.device)
            keep[:res.pos_is_gt.numel()] = res.pos_is_gt == 0
            results.append(InstanceData(bboxes=bboxes[keep]))
        return results

    # ------------------------------------------------------------------ inference
    def predict_by_feat(self, rois: Sequence[Tensor], cls_scores: Sequence[Tensor], bbox_preds: Sequence,
                        batch_img_metas: List[dict], rcnn_test_cfg: Optional[dict] = None,
                        rescale: bool = False) -> List[InstanceData]:
        """Detections per image.

        Args:
            rois: per image (R_i, 5); cls_scores: per image (R_i, num_classes + 1) logits;
            bbox_preds: per image (bucket logits (R_i, 4S), offsets (R_i, 4S)) (see :meth:`bbox_pred_split`).
            rcnn_test_cfg: ``score_thr`` (on the softmax score), ``nms``, ``max_per_img``; the kept
                scores are multiplied by the localisation confidence (MMDetection's
                ``multiclass_nms(score_factors=...)``). None: every RoI's box and softmax scores.
            rescale: boxes in original-image pixels.

        Returns:
            per image InstanceData(bboxes (K, 4), scores (K,), labels (K,)).
        """
        if rcnn_test_cfg is not None:
            require_cfg(rcnn_test_cfg, ('score_thr', 'nms', 'max_per_img'), 'SABLHead test_cfg (test_cfg.rcnn)')
        results = []
        for roi, cls_score, bbox_pred, meta in zip(rois, cls_scores, bbox_preds, batch_img_metas):
            if roi.size(0) == 0:
                results.append(empty_instances(roi.device))
                continue
            scores = F.softmax(cls_score.float(), dim=1)
            bboxes, confidence = self.bbox_coder.decode(roi[:, 1:].float(), tuple(p.float() for p in bbox_pred),
                                                        max_shape=meta['img_shape'][:2])
            bound = bboxes.new_tensor(max(meta['img_shape'][:2]))
            if rescale:
                sf = bboxes.new_tensor(meta['scale_factor']).repeat(2)
                bboxes, bound = bboxes / sf, bound / sf.min()
            if rcnn_test_cfg is None:
                results.append(InstanceData(bboxes=bboxes, scores=scores))
                continue
            num_rois, num_classes = scores.size(0), self.num_classes
            fg = scores[:, :-1]
            valid = (fg > rcnn_test_cfg['score_thr']).reshape(-1).nonzero().squeeze(1)
            flat = (fg * confidence[:, None]).reshape(-1)[valid]
            boxes = bboxes[:, None].expand(num_rois, num_classes, 4).reshape(-1, 4)[valid]
            labels = torch.arange(num_classes, device=roi.device).repeat(num_rois)[valid]
            keep, kept = class_wise_nms(boxes, flat, labels, rcnn_test_cfg['nms'], bound)
            if rcnn_test_cfg['max_per_img'] > 0:
                keep, kept = keep[:rcnn_test_cfg['max_per_img']], kept[:rcnn_test_cfg['max_per_img']]
            results.append(InstanceData(bboxes=boxes[keep], scores=kept, labels=labels[keep]))
        return results
