"""``MultiInstanceBBoxHead``: CrowdDet's box head, k predictions per RoI trained with the EMD loss.

"Detection in Crowded Scenes: One Proposal, Multiple Predictions" (Chu et al., CVPR 2020): in a
crowd one proposal often covers two people, so each RoI predicts a *set* of k boxes (k = 2) with
scores. Layout (MMDetection 3.3's keys)::

    shared convs -> shared fcs -+-> [cls convs_i -> cls fcs_i -> fc_cls[i]]  i = 0..k-1
                                +-> [reg convs_i -> reg fcs_i -> fc_reg[i]]
    with_refine:  shared fcs output ++ (deltas_i, score_i) x 4 -> shared_fcs_ref -> fc_cls_ref[i], fc_reg_ref[i]

Classes are background-first here (logit 0 background, logit 1 person), as CrowdDet's targets are
(label 1 = matched to a person). The Earth Mover's Distance loss matches the k predictions to the
RoI's k targets by the cheaper permutation; at test time the k boxes of a RoI go through "set NMS"
(:func:`rcnn_plugins.models.layers.set_nms.set_nms`), where boxes of one RoI never suppress each other.
"""
import itertools
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ....registry import MODELS
from ...layers.set_nms import set_nms
from ...utils import empty_instances, require_cfg
from .bbox_head import BBoxHead
from .convfc_bbox_head import conv_fc_branch


@MODELS.register_module()
class MultiInstanceBBoxHead(BBoxHead):
    """Box head predicting ``num_instance`` (score, box) pairs per RoI (CrowdDet).

    Args:
        num_instance: predictions per RoI (k), 2.
        with_refine: add the refine module: a second prediction per instance from the shared
            features plus the first prediction (deltas and person score, repeated 4 times, as
            MMDetection/CrowdDet); its outputs are trained too and used at test time.
        num_shared_convs, num_shared_fcs, num_cls_convs, num_cls_fcs, num_reg_convs, num_reg_fcs:
            layer counts (the config: 2 shared fcs, nothing per branch).
        conv_out_channels, fc_out_channels: widths of the convs / fcs.
        **kwargs: :class:`BBoxHead` arguments; ``num_classes`` must be 1 (CrowdDet detects one class).

    Forward: (R, C, 7, 7) -> cls_score (R, k * 2), bbox_pred (R, k * 4) (instance-major), and with
    the refine module also cls_score_ref, bbox_pred_ref of the same shapes.
    """

    def __init__(self, num_instance: int = 2, with_refine: bool = False, num_shared_convs: int = 0,
                 num_shared_fcs: int = 2, num_cls_convs: int = 0, num_cls_fcs: int = 0, num_reg_convs: int = 0,
                 num_reg_fcs: int = 0, conv_out_channels: int = 256, fc_out_channels: int = 1024, init_cfg=None,
                 *args, **kwargs) -> None:
        super().__init__(*args, init_cfg=init_cfg, **kwargs)
        name = type(self).__name__
        counts = (num_shared_convs, num_shared_fcs, num_cls_convs, num_cls_fcs, num_reg_convs, num_reg_fcs)
        if min(counts) < 0 or sum(counts) == 0:
            raise ValueError(f'{name}: layer counts must be >= 0 and not all 0, got {counts}')
        if (num_cls_convs > 0 or num_reg_convs > 0) and num_shared_fcs > 0:
            raise ValueError(f'{name}: branch convs cannot follow shared fcs; set num_shared_fcs=0')
        if num_instance < 1:
            raise ValueError(f'{name}: num_instance must be >= 1, got {num_instance}')
        if self.num_classes != 1:
            raise ValueError(f'{name}: num_classes must be 1 (CrowdDet detects one class; its test-time '
                             f'scores and refine inputs are single-class, as in MMDetection), got {self.num_classes}')
        if not (self.with_cls and self.with_reg):
            raise ValueError(f'{name}: with_cls and with_reg must be True (the EMD loss scores and regresses)')
        if self.reg_decoded_bbox:
            raise ValueError(f'{name}: reg_decoded_bbox=True is not supported (CrowdDet regresses deltas); '
                             'see docs/MMDET_DIFFERENCES.md')
        if with_refine and num_shared_fcs == 0:
            raise ValueError(f'{name}: with_refine needs num_shared_fcs > 0 (it reads the flat shared features)')
        self.num_instance, self.with_refine = num_instance, with_refine
        self.num_shared_convs, self.num_shared_fcs = num_shared_convs, num_shared_fcs
        self.num_cls_convs, self.num_cls_fcs = num_cls_convs, num_cls_fcs
        self.num_reg_convs, self.num_reg_fcs = num_reg_convs, num_reg_fcs
        self.conv_out_channels, self.fc_out_channels = conv_out_channels, fc_out_channels

        self.shared_convs, self.shared_fcs, shared_dim = self._add_conv_fc_branch(
            num_shared_convs, num_shared_fcs, self.in_channels, is_shared=True)
        self.shared_out_channels = shared_dim
        self.relu = nn.ReLU(inplace=True)
        if with_refine:
            # Shared features + (4 deltas + person score) repeated 4 times: 1024 + 20 in the config.
            self.shared_fcs_ref = nn.Linear(shared_dim + (self.reg_out_channels + 1) * 4, shared_dim)
            self.fc_cls_ref, self.fc_reg_ref = nn.ModuleList(), nn.ModuleList()
        self.cls_convs, self.cls_fcs, self.reg_convs, self.reg_fcs = (nn.ModuleList() for _ in range(4))
        # Replace the base head's single predictors by one per instance (fc_cls.0, fc_cls.1, ...).
        self.fc_cls, self.fc_reg = nn.ModuleList(), nn.ModuleList()
        for _ in range(num_instance):
            cls_convs, cls_fcs, cls_dim = self._add_conv_fc_branch(num_cls_convs, num_cls_fcs, shared_dim)
            reg_convs, reg_fcs, reg_dim = self._add_conv_fc_branch(num_reg_convs, num_reg_fcs, shared_dim)
            if num_shared_fcs == 0 and not self.with_avg_pool:
                # A branch without fcs feeds its flattened map to the predictor.
                cls_dim *= self.roi_feat_area if num_cls_fcs == 0 else 1
                reg_dim *= self.roi_feat_area if num_reg_fcs == 0 else 1
            self.cls_convs.append(cls_convs)
            self.cls_fcs.append(cls_fcs)
            self.reg_convs.append(reg_convs)
            self.reg_fcs.append(reg_fcs)
            self.fc_cls.append(self._predictor(self.cls_predictor_cfg, cls_dim, self.cls_channels))
            self.fc_reg.append(self._predictor(self.reg_predictor_cfg, reg_dim, self.reg_out_channels))
            if with_refine:
                self.fc_cls_ref.append(self._predictor(self.cls_predictor_cfg, shared_dim, self.cls_channels))
                self.fc_reg_ref.append(self._predictor(self.reg_predictor_cfg, shared_dim, self.reg_out_channels))
        if init_cfg is None:
            # MMDetection's: the base head's Normal predictors plus Xavier-uniform fcs (the refine
            # layers keep PyTorch's default init there too).
            self.init_cfg += [dict(type='Xavier', distribution='uniform',
                                   override=[dict(name='shared_fcs'), dict(name='cls_fcs'), dict(name='reg_fcs')])]

    def _add_conv_fc_branch(self, num_convs: int, num_fcs: int, in_channels: int,
                            is_shared: bool = False) -> Tuple[nn.ModuleList, nn.ModuleList, int]:
        """One branch (see :func:`convfc_bbox_head.conv_fc_branch`); plain convs, as MMDetection's."""
        flatten = (is_shared or self.num_shared_fcs == 0) and not self.with_avg_pool
        return conv_fc_branch(num_convs, num_fcs, in_channels, self.conv_out_channels, self.fc_out_channels,
                              self.roi_feat_area if flatten else 1)

    def _branch(self, x: Tensor, convs: nn.ModuleList, fcs: nn.ModuleList) -> Tensor:
        for conv in convs:
            x = conv(x)
        if x.dim() > 2:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
        for fc in fcs:
            x = self.relu(fc(x))
        return x

    def forward(self, x: Tensor) -> tuple:
        """(R, C, h, w) -> (cls_score (R, k*2), bbox_pred (R, k*4)[, cls_score_ref, bbox_pred_ref])."""
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
            for fc in self.shared_fcs:
                x = self.relu(fc(x))
        # Each instance's branch starts from the shared features (see docs/MMDET_DIFFERENCES.md).
        cls_scores = [self.fc_cls[i](self._branch(x, self.cls_convs[i], self.cls_fcs[i]))
                      for i in range(self.num_instance)]
        bbox_preds = [self.fc_reg[i](self._branch(x, self.reg_convs[i], self.reg_fcs[i]))
                      for i in range(self.num_instance)]
        if not self.with_refine:
            return torch.cat(cls_scores, dim=1), torch.cat(bbox_preds, dim=1)
        cls_refs, bbox_refs = [], []
        for i in range(self.num_instance):
            # The first prediction (deltas, person probability) tiled 4x, next to the shared features.
            person = cls_scores[i].softmax(dim=-1)[:, 1:2]
            feat = torch.cat([x, torch.cat([bbox_preds[i], person], dim=1).repeat(1, 4)], dim=1)
            feat = F.relu(self.shared_fcs_ref(feat))
            cls_refs.append(self.fc_cls_ref[i](feat))
            bbox_refs.append(self.fc_reg_ref[i](feat))
        return (torch.cat(cls_scores, dim=1), torch.cat(bbox_preds, dim=1),
                torch.cat(cls_refs, dim=1), torch.cat(bbox_refs, dim=1))

    # ------------------------------------------------------------------ training
    def get_targets(self, sampling_results: Sequence, rcnn_train_cfg: Optional[dict] = None,
                    concat: bool = True) -> tuple:
        """Targets of every sampled RoI (positives then negatives per image), k per RoI.

        Returns:
            labels (R, k) long (1 person, 0 background, -1 ignore), label_weights (R, k) ones,
            bbox_targets (R, k*4) encoded deltas of each instance's gt, bbox_weights (R, k*4) ones;
            per-image lists when ``concat`` is False.
        """
        k = self.num_instance
        labels, label_weights, bbox_targets, bbox_weights = [], [], [], []
        for res in sampling_results:
            gts = torch.cat([res.pos_gt_bboxes, res.neg_gt_bboxes]).reshape(-1, 4)
            priors = res.priors[:, None, :].expand(-1, k, -1).reshape(-1, 4)
            targets = self.bbox_coder.encode(priors, gts.to(priors.dtype)).reshape(-1, k * 4)
            lab = torch.cat([res.pos_gt_labels, res.neg_gt_labels]).long()
            labels.append(lab)
            label_weights.append(targets.new_ones(lab.shape))
            bbox_targets.append(targets)
            bbox_weights.append(targets.new_ones(targets.shape))
        if concat:
            return torch.cat(labels), torch.cat(label_weights), torch.cat(bbox_targets), torch.cat(bbox_weights)
        return labels, label_weights, bbox_targets, bbox_weights

    def emd_cost(self, cls_score: Tensor, bbox_pred: Tensor, labels: Tensor, bbox_targets: Tensor) -> Tensor:
        """Cost of matching prediction i of each RoI to its target j: (R, k, k).

        cost[r, i, j] = CE(cls_i, label_j) + [label_j > 0] * sum_4 SmoothL1(delta_i, target_j), with the
        configured losses (``loss_weight`` included). As MMDetection, an ignore target (-1) is scored
        as background by the classification term.
        """
        num_rois, k = labels.shape
        cls = cls_score.float().view(num_rois, k, 1, -1).expand(-1, -1, k, -1)
        lab = labels.long().view(num_rois, 1, k).expand(-1, k, -1)
        ce = self.loss_cls(cls.reshape(-1, cls.size(-1)), lab.clamp(min=0).reshape(-1),
                           reduction_override='none').view(num_rois, k, k)
        fg = lab > 0
        pred = bbox_pred.float().view(num_rois, k, 1, 4).expand(-1, -1, k, -1)
        # Background targets may be undefined (e.g. zero boxes): zero them before the loss.
        target = torch.where(fg[..., None], bbox_targets.float().view(num_rois, 1, k, 4), 0.)
        box = self.loss_bbox(pred.reshape(-1, 4), target.reshape(-1, 4), reduction_override='none')
        return ce + torch.where(fg, box.view(num_rois, k, k, 4).sum(-1), 0.)

    def loss(self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, labels: Tensor, label_weights: Tensor,
             bbox_targets: Tensor, bbox_weights: Tensor, **kwargs) -> dict:
        """EMD loss: per RoI the cheapest assignment of its k predictions to its k targets, averaged.

        Args:
            cls_score: (R, k*2); bbox_pred: (R, k*4); labels: (R, k); bbox_targets: (R, k*4).
            rois, label_weights, bbox_weights: unused (MMDetection's signature).

        Returns:
            dict(loss_rcnn_emd=mean over RoIs of min over permutations of the summed matched costs).
        """
        if bbox_pred.numel() == 0:
            return dict(loss_rcnn_emd=bbox_pred.sum())
        k = self.num_instance
        cost = self.emd_cost(cls_score, bbox_pred, labels.view(-1, k), bbox_targets)
        perms = torch.tensor(list(itertools.permutations(range(k))), device=cost.device)  # (k!, k)
        totals = cost[:, torch.arange(k, device=cost.device), perms].sum(-1)  # (R, k!)
        return dict(loss_rcnn_emd=totals.min(dim=1).values.mean())

    def loss_and_target(self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, sampling_results: Sequence,
                        rcnn_train_cfg: dict, **kwargs) -> dict:
        """Targets, then :meth:`loss`: dict(loss_bbox=dict(loss_rcnn_emd), bbox_targets=(...))."""
        targets = self.get_targets(sampling_results, rcnn_train_cfg)
        return dict(loss_bbox=self.loss(cls_score, bbox_pred, rois, *targets), bbox_targets=targets)

    # ------------------------------------------------------------------ inference
    @staticmethod
    def set_nms(bboxes: Tensor, scores: Tensor, score_thr: float, iou_threshold: float,
                max_num: int = -1) -> Tuple[Tensor, Tensor]:
        """MMDetection's interface: ``bboxes`` (M, 5) with the RoI index last, ``scores`` (M,) ->
        the (K, 5) boxes and (K,) scores kept (score > ``score_thr``, then set NMS), best first."""
        idx = torch.nonzero(scores > score_thr).reshape(-1)
        keep = idx[set_nms(bboxes[idx, :4], scores[idx], bboxes[idx, 4], iou_threshold, max_num)]
        return bboxes[keep], scores[keep]

    def predict_by_feat(self, rois: Sequence[Tensor], cls_scores: Sequence[Tensor], bbox_preds: Sequence[Tensor],
                        batch_img_metas: List[dict], rcnn_test_cfg: Optional[dict] = None,
                        rescale: bool = False, **kwargs) -> List[InstanceData]:
        """Per image: decode the k boxes of every RoI, keep person scores above ``score_thr``, set NMS.

        Args:
            rois / cls_scores / bbox_preds: per image (R_i, 5) / (R_i, k*2) / (R_i, k*4).
            batch_img_metas: ``img_shape``, ``scale_factor`` (w, h).
            rcnn_test_cfg: ``score_thr``, ``nms`` (its ``iou_threshold``), ``max_per_img``; None returns
                every decoded box (R_i*k, 4) with its (R_i*k, 2) scores, no NMS.
            rescale: boxes in original-image pixels.

        Returns:
            per image InstanceData(bboxes (K, 4), scores (K,), labels (K,) zeros), best first.
        """
        if rcnn_test_cfg is not None:
            require_cfg(rcnn_test_cfg, ('score_thr', 'nms', 'max_per_img'), f'{type(self).__name__} test_cfg')
        k = self.num_instance
        results = []
        for roi, cls_score, bbox_pred, meta in zip(rois, cls_scores, bbox_preds, batch_img_metas):
            if roi.size(0) == 0:
                results.append(empty_instances(roi.device))
                continue
            scores = F.softmax(cls_score.float().reshape(-1, self.cls_channels), dim=-1)
            priors = roi[:, 1:].float().repeat_interleave(k, dim=0)
            bboxes = self.bbox_coder.decode(priors, bbox_pred.float().reshape(-1, 4), max_shape=meta['img_shape'][:2])
            if rescale:
                sf = meta['scale_factor']
                bboxes = bboxes / bboxes.new_tensor([sf[0], sf[1], sf[0], sf[1]])
            if rcnn_test_cfg is None:
                results.append(InstanceData(bboxes=bboxes, scores=scores))
                continue
            person = scores[:, 1]
            idx = torch.nonzero(person > rcnn_test_cfg['score_thr']).reshape(-1)
            groups = torch.div(idx, k, rounding_mode='floor')  # the RoI each box came from
            keep = idx[set_nms(bboxes[idx], person[idx], groups, rcnn_test_cfg['nms']['iou_threshold'],
                               rcnn_test_cfg['max_per_img'])]
            results.append(InstanceData(bboxes=bboxes[keep], scores=person[keep],
                                        labels=torch.zeros_like(keep)))
        return results
