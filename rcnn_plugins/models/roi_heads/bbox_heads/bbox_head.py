"""``BBoxHead``: the second-stage box classifier/regressor (MMDetection 3.x keys and semantics).

The base head flattens the pooled RoI features and applies two linear predictors: ``fc_cls``
(num_classes + 1 logits, background last) and ``fc_reg`` (4 deltas per class, or 4 when
class-agnostic). It also owns the training targets, the losses and the post-processing
(decode, rescale, multi-class NMS). ``ConvFCBBoxHead`` adds shared / branch layers in front.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ....registry import MODELS, TASK_UTILS, build_or_use
from ...losses import accuracy
from ...postprocess import rcnn_detections
from ...utils import empty_instances, require_cfg


@MODELS.register_module()
class BBoxHead(BaseModule):
    """Linear box head on flattened RoI features.

    Args:
        roi_feat_size: side of the pooled RoI features (7).
        in_channels: channels of the pooled features.
        num_classes: foreground classes; the background logit is index ``num_classes``.
        bbox_coder: box coder config (DeltaXYWHBBoxCoder with stds 0.1, 0.1, 0.2, 0.2).
        reg_class_agnostic: one box per RoI instead of one per class.
        reg_decoded_bbox: regress decoded boxes (for IoU-type losses) instead of deltas.
        loss_cls, loss_bbox: loss configs.
        with_avg_pool: average-pool the RoI features before the predictors (C4 heads): the
            predictors then read ``in_channels`` features instead of ``in_channels * roi_feat_size**2``.
        with_cls, with_reg: build ``fc_cls`` / ``fc_reg``; a switched-off branch returns None.
        cls_predictor_cfg, reg_predictor_cfg: the predictors' layer type (``Linear``; ``NormedLinear``
            for cosine classifiers), built with ``in_features`` / ``out_features``.
        predict_box_type: only ``'hbox'`` (MMDetection's default).
    """

    def __init__(self,
                 with_avg_pool: bool = False,
                 with_cls: bool = True,
                 with_reg: bool = True,
                 roi_feat_size: int = 7,
                 in_channels: int = 256,
                 num_classes: int = 80,
                 bbox_coder: dict = dict(type='DeltaXYWHBBoxCoder', clip_border=True,
                                         target_means=[0., 0., 0., 0.], target_stds=[0.1, 0.1, 0.2, 0.2]),
                 reg_class_agnostic: bool = False,
                 reg_decoded_bbox: bool = False,
                 loss_cls: dict = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 loss_bbox: dict = dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
                 reg_predictor_cfg: dict = dict(type='Linear'),
                 cls_predictor_cfg: dict = dict(type='Linear'),
                 predict_box_type: str = 'hbox',
                 init_cfg=None) -> None:
        if not (with_cls or with_reg):
            raise ValueError(f'{type(self).__name__}: with_cls and with_reg are both False; the head predicts nothing')
        if predict_box_type != 'hbox':
            raise ValueError(f"{type(self).__name__}: predict_box_type={predict_box_type!r}: only 'hbox' "
                             '(axis-aligned xyxy boxes) is supported')
        if init_cfg is None:
            init_cfg = ([dict(type='Normal', std=0.01, override=dict(name='fc_cls'))] if with_cls else []) + \
                ([dict(type='Normal', std=0.001, override=dict(name='fc_reg'))] if with_reg else [])
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'{type(self).__name__}: num_classes must be >= 1, got {num_classes}')
        self.with_avg_pool, self.with_cls, self.with_reg = with_avg_pool, with_cls, with_reg
        self.cls_predictor_cfg, self.reg_predictor_cfg = cls_predictor_cfg, reg_predictor_cfg
        self.predict_box_type = predict_box_type
        # A "custom" loss (CrossEntropyCustomLoss, e.g. sigmoid for V3Det's 13k classes) decides the
        # classifier's width, the score activation and the accuracy; any other loss (sigmoid or not)
        # gets num_classes + 1 logits scored by softmax, as MMDetection does.
        self.loss_cls = build_or_use(MODELS, loss_cls)
        self.roi_feat_size = (roi_feat_size, roi_feat_size) if isinstance(roi_feat_size, int) else tuple(roi_feat_size)
        self.roi_feat_area = self.roi_feat_size[0] * self.roi_feat_size[1]
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.reg_class_agnostic = reg_class_agnostic
        self.reg_decoded_bbox = reg_decoded_bbox
        self.bbox_coder = build_or_use(TASK_UTILS, bbox_coder)
        self.loss_bbox = build_or_use(MODELS, loss_bbox)
        self.reg_out_channels = 4 if reg_class_agnostic else 4 * num_classes
        if with_avg_pool:
            # C4 heads: average the (C, 7, 7) map of the shared ResLayer to one C-vector per RoI.
            self.avg_pool = nn.AvgPool2d(self.roi_feat_size)
        in_features = in_channels if with_avg_pool else in_channels * self.roi_feat_area
        self._build_predictors(in_features, in_features)

    @property
    def custom_cls_channels(self) -> bool:
        """The loss sets the classifier's width (``get_cls_channels``) and the scores (``get_activation``)."""
        return getattr(self.loss_cls, 'custom_cls_channels', False)

    @property
    def custom_activation(self) -> bool:
        """The loss turns logits into scores (``get_activation``) and measures accuracy (``get_accuracy``)."""
        return getattr(self.loss_cls, 'custom_activation', False)

    @property
    def custom_accuracy(self) -> bool:
        return getattr(self.loss_cls, 'custom_accuracy', False)

    @property
    def cls_channels(self) -> int:
        """Logits ``fc_cls`` predicts: num_classes + 1 (background last), or what a custom loss asks for
        (num_classes for a sigmoid ``CrossEntropyCustomLoss``)."""
        return self.loss_cls.get_cls_channels(self.num_classes) if self.custom_cls_channels else self.num_classes + 1

    def cls_activation(self, cls_score: Tensor) -> Tensor:
        """(R, cls_channels) logits -> (R, num_classes + 1) scores, background last: softmax, or the custom
        loss's ``get_activation`` (sigmoid per class, background = clamp(1 - sum, 0, 1))."""
        if self.custom_cls_channels:
            return self.loss_cls.get_activation(cls_score.float())
        return F.softmax(cls_score.float(), dim=-1)

    def _build_predictors(self, cls_in: int, reg_in: int) -> None:
        """``fc_cls`` (cls_in -> ``cls_channels``: num_classes + 1 unless a custom loss says otherwise) and
        ``fc_reg`` (reg_in -> 4 or 4 * num_classes) from the
        predictor configs (``Linear``, or e.g. ``NormedLinear``); absent when ``with_cls``/``with_reg`` is off."""
        if self.with_cls:
            self.fc_cls = self._predictor(self.cls_predictor_cfg, cls_in, self.cls_channels)
        if self.with_reg:
            self.fc_reg = self._predictor(self.reg_predictor_cfg, reg_in, self.reg_out_channels)

    @staticmethod
    def _predictor(cfg, in_features: int, out_features: int) -> nn.Module:
        if cfg is None or cfg.get('type', 'Linear') == 'Linear':
            kwargs = {k: v for k, v in (cfg or {}).items() if k != 'type'}
            return nn.Linear(in_features, out_features, **kwargs)
        return build_or_use(MODELS, dict(cfg, in_features=in_features, out_features=out_features))

    def forward(self, x: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """(R, C, 7, 7) -> cls_score (R, num_classes + 1), bbox_pred (R, 4*num_classes or 4); None for a
        branch that is switched off (``with_cls``/``with_reg``)."""
        if self.with_avg_pool:
            x = self.avg_pool(x)
        x = x.flatten(1)
        return (self.fc_cls(x) if self.with_cls else None), (self.fc_reg(x) if self.with_reg else None)

    # ------------------------------------------------------------------ training
    def get_targets(self, sampling_results: Sequence, rcnn_train_cfg: dict) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Targets of the sampled RoIs of all images, in the order of ``bbox2roi(res.priors)``.

        Per image the positives come first (label = matched gt label, target = encoded gt),
        then the negatives (label = ``num_classes``, zero box target and weight).

        Returns:
            labels (R,) long, label_weights (R,), bbox_targets (R, 4), bbox_weights (R, 4).
        """
        pos_weight = rcnn_train_cfg.get('pos_weight', -1) if rcnn_train_cfg is not None else -1
        pos_weight = 1.0 if pos_weight <= 0 else float(pos_weight)
        labels, label_weights, bbox_targets, bbox_weights = [], [], [], []
        for res in sampling_results:
            pos_priors, neg_priors = res.pos_priors, res.neg_priors
            num_pos, num_neg = pos_priors.size(0), neg_priors.size(0)
            if self.reg_decoded_bbox:
                pos_targets = res.pos_gt_bboxes
            else:
                pos_targets = self.bbox_coder.encode(pos_priors, res.pos_gt_bboxes)
            labels.append(torch.cat([res.pos_gt_labels.long(),
                                     pos_priors.new_full((num_neg,), self.num_classes, dtype=torch.long)]))
            label_weights.append(torch.cat([pos_priors.new_full((num_pos,), pos_weight),
                                            pos_priors.new_ones(num_neg)]))
            bbox_targets.append(torch.cat([pos_targets.to(pos_priors.dtype), pos_priors.new_zeros(num_neg, 4)]))
            bbox_weights.append(torch.cat([pos_priors.new_ones(num_pos, 4), pos_priors.new_zeros(num_neg, 4)]))
        return torch.cat(labels), torch.cat(label_weights), torch.cat(bbox_targets), torch.cat(bbox_weights)

    def loss(self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, labels: Tensor, label_weights: Tensor,
             bbox_targets: Tensor, bbox_weights: Tensor) -> dict:
        """Losses of R sampled RoIs.

        ``loss_cls`` is averaged over the RoIs with weight > 0; ``loss_bbox`` uses the deltas of
        each positive's gt class and is averaged over all R sampled RoIs (MMDetection's choice).
        Negatives carry zero box weight, so no boolean selection (and host sync) is needed.

        Returns:
            dict(loss_cls, loss_bbox, acc) (acc in percent); a custom loss (``custom_activation``) reports
            its own accuracy keys instead of ``acc`` (``acc_classes``: foreground RoIs only), and a loss
            that returns a dict gives its own loss keys.
        """
        cls_score = cls_score.float()
        num_rois = cls_score.size(0)
        avg_factor = (label_weights > 0).sum().clamp(min=1).float()
        loss_cls = self.loss_cls(cls_score, labels, label_weights, avg_factor=avg_factor)
        losses = dict(loss_cls) if isinstance(loss_cls, dict) else dict(loss_cls=loss_cls)
        if self.custom_activation:
            losses.update(self.loss_cls.get_accuracy(cls_score, labels))
        else:
            losses['acc'] = accuracy(cls_score, labels)
        if bbox_pred is None:  # with_reg=False (e.g. Grid R-CNN: boxes come from another branch)
            return losses
        bbox_pred = bbox_pred.float()
        if not self.reg_class_agnostic:
            # Deltas of each RoI's own class; background RoIs (weight 0) read class num_classes-1.
            cls_idx = labels.clamp(max=self.num_classes - 1)
            rows = torch.arange(num_rois, device=labels.device)
            bbox_pred = bbox_pred.view(num_rois, self.num_classes, 4)[rows, cls_idx]
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(rois[:, 1:].float(), bbox_pred)
        losses['loss_bbox'] = self.loss_bbox(bbox_pred, bbox_targets, bbox_weights,
                                             avg_factor=max(bbox_targets.size(0), 1))
        return losses

    def loss_and_target(self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, sampling_results: Sequence,
                        rcnn_train_cfg: dict) -> dict:
        """Targets from the sampling results, then ``loss``. Returns dict(loss_bbox=losses, bbox_targets=...)."""
        targets = self.get_targets(sampling_results, rcnn_train_cfg)
        return dict(loss_bbox=self.loss(cls_score, bbox_pred, rois, *targets), bbox_targets=targets)

    # ------------------------------------------------------------------ refinement (Cascade R-CNN)
    def regress_by_class(self, priors: Tensor, label: Tensor, bbox_pred: Tensor, img_meta: dict) -> Tensor:
        """Apply each RoI's deltas of class ``label`` (or its class-agnostic deltas) to ``priors``.

        Args:
            priors: (N, 4) boxes of one image, resized-image pixels.
            label: (N,) long, the class whose deltas are used (ignored when class-agnostic).
            bbox_pred: (N, 4 * num_classes) or (N, 4) deltas.
            img_meta: ``img_shape`` (h, w) to clip to.

        Returns:
            (N, 4) regressed boxes.
        """
        if not self.reg_class_agnostic:
            rows = torch.arange(bbox_pred.size(0), device=bbox_pred.device)
            bbox_pred = bbox_pred.view(bbox_pred.size(0), -1, 4)[rows, label]
        return self.bbox_coder.decode(priors, bbox_pred, max_shape=img_meta['img_shape'][:2])

    def refine_bboxes(self, sampling_results: Sequence, bbox_results: dict,
                      batch_img_metas: List[dict]) -> Optional[List[InstanceData]]:
        """Training-time refinement: the next stage's proposals from this stage's predictions.

        A positive RoI is regressed with its gt class's deltas, a negative with the deltas of its
        highest-scoring foreground class; the gt boxes the sampler added as proposals are dropped
        (the next stage's sampler adds them again). Call it under ``torch.no_grad()``.

        Args:
            sampling_results: per image, the sampling result of this stage (``priors``, ``pos_is_gt``).
            bbox_results: ``rois`` (R, 5), ``cls_score`` (R, num_classes + 1), ``bbox_pred`` (R, 4C or 4),
                ``bbox_targets`` (labels (R,), ...) in the order of ``bbox2roi(res.priors)``.
            batch_img_metas: per image ``img_shape``.

        Returns:
            per image InstanceData(bboxes (R_i - num_gt_proposals_i, 4)); None when there are no RoIs.
        """
        cls_scores = bbox_results['cls_score']
        if cls_scores.numel() == 0:
            return None
        labels = bbox_results['bbox_targets'][0]
        # Negatives (label num_classes) take the argmax over the foreground classes.
        labels = torch.where(labels == self.num_classes, cls_scores[:, :self.num_classes].argmax(1), labels)
        counts = [res.priors.size(0) for res in sampling_results]
        results = []
        for res, rois, label, pred, meta in zip(sampling_results, bbox_results['rois'].split(counts),
                                               labels.split(counts), bbox_results['bbox_pred'].split(counts),
                                               batch_img_metas):
            bboxes = self.regress_by_class(rois[:, 1:], label, pred, meta)
            # Positives come first in each image's RoIs: drop the rows that were gt boxes.
            keep = torch.ones(rois.size(0), dtype=torch.bool, device=rois.device)
            keep[:res.pos_is_gt.numel()] = res.pos_is_gt == 0
            results.append(InstanceData(bboxes=bboxes[keep]))
        return results

    # ------------------------------------------------------------------ inference
    def predict_by_feat(self, rois: Sequence[Tensor], cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor],
                        batch_img_metas: List[dict], rcnn_test_cfg: Optional[dict] = None,
                        rescale: bool = False) -> List[InstanceData]:
        """Detections per image.

        Args:
            rois / cls_scores / bbox_preds: per image (R_i, 5) / (R_i, num_classes + 1) / (R_i, 4*C or 4).
            batch_img_metas: per image metainfo: ``img_shape`` (h, w), ``scale_factor`` (w, h).
            rcnn_test_cfg: ``score_thr``, ``nms``, ``max_per_img``, optional ``min_bbox_size``
                (drop class boxes whose width or height, in resized-image pixels, is not above
                it, before NMS, as torchvision's ``remove_small_boxes``; default -1: keep all);
                None returns every RoI's per-class boxes (R, 4*C) and scores (R, num_classes + 1)
                without NMS.
            rescale: map boxes to original-image pixels (divide by scale_factor).

        Returns:
            per image InstanceData(bboxes (K, 4), scores (K,), labels (K,)).
        """
        if rcnn_test_cfg is not None:
            require_cfg(rcnn_test_cfg, ('score_thr', 'nms', 'max_per_img'), 'BBoxHead test_cfg (test_cfg.rcnn)')
        results = []
        for roi, cls_score, bbox_pred, meta in zip(rois, cls_scores, bbox_preds, batch_img_metas):
            if roi.size(0) == 0:
                results.append(empty_instances(roi.device))
                continue
            if rcnn_test_cfg is None:
                results.append(self._raw_predictions(roi, cls_score, bbox_pred, meta, rescale))
                continue
            sf = meta['scale_factor'] if rescale else None
            # The function the export wrapper records (models/postprocess), one image at a time.
            bboxes, scores, labels = rcnn_detections(
                roi[:, 1:], cls_score, bbox_pred, self.bbox_coder,
                torch.tensor(meta['img_shape'][:2], dtype=torch.float32, device=roi.device), rcnn_test_cfg,
                None if sf is None else roi.new_tensor([sf[0], sf[1], sf[0], sf[1]], dtype=torch.float32),
                activation=self.cls_activation if self.custom_cls_channels else None)
            results.append(InstanceData(bboxes=bboxes, scores=scores, labels=labels))
        return results

    def _raw_predictions(self, roi: Tensor, cls_score: Tensor, bbox_pred: Tensor, meta: dict,
                         rescale: bool) -> InstanceData:
        """Without a test cfg: every RoI's decoded class boxes (R, 4 * C or 4) and scores (R, C + 1)."""
        scores = self.cls_activation(cls_score)
        bboxes = self.bbox_coder.decode(roi[:, 1:].float(), bbox_pred.float(), max_shape=meta['img_shape'][:2])
        if rescale:
            sf = meta['scale_factor']
            bboxes = (bboxes.view(roi.size(0), -1, 4) / bboxes.new_tensor([sf[0], sf[1], sf[0], sf[1]])).flatten(1)
        return InstanceData(bboxes=bboxes, scores=scores)
