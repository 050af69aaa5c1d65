"""``CascadeRoIHead``: Cascade R-CNN's multi-stage box head (Cai & Vasconcelos, 2018; MMDetection 3.x
keys and semantics).

Stage ``t`` has its own RoI extractor, box head, assigner and sampler. Training: the proposals of
stage 0 are the RPN's; stage ``t + 1`` is trained on stage ``t``'s sampled RoIs regressed by stage
``t``'s predictions (under ``no_grad``: no gradient flows from a later stage into an earlier one),
with a stricter IoU threshold in its assigner. The losses are named ``s{t}.loss_cls``,
``s{t}.loss_bbox``, ``s{t}.acc`` and weighted by ``stage_loss_weights[t]``. Inference: the proposals
are refined through every stage; the class scores of all stages are averaged (the mean of the
stages' logits, turned into scores by the last head's post-processing: softmax, or a custom
classification loss's activation, as MMDetection does) and the last stage's regression gives the boxes.

State-dict keys: ``bbox_head.{t}.*`` (and ``bbox_roi_extractor.{t}.*`` where the extractor has
parameters), MMDetection's.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule, ModuleList
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS, TASK_UTILS, build_or_use
from ...structures import DetDataSample, bbox2roi
from ..utils import empty_instances, require_cfg, unpack_gt_instances


def _per_stage(cfg, num_stages: int, name: str) -> list:
    """A list of ``num_stages`` configs/modules: a list is checked for length, one value is repeated."""
    if isinstance(cfg, (list, tuple)):
        if len(cfg) != num_stages:
            raise ValueError(f'CascadeRoIHead: {name} has {len(cfg)} entries for num_stages={num_stages}; '
                             'give one per stage or a single config for all stages')
        return list(cfg)
    return [cfg] * num_stages


def _detach(bbox_pred):
    """A bbox_pred tensor, or a tuple of them (SABL's bucket logits and offsets), detached."""
    return bbox_pred.detach() if isinstance(bbox_pred, Tensor) else tuple(p.detach() for p in bbox_pred)


@MODELS.register_module()
class CascadeRoIHead(BaseModule):
    """Cascade of ``num_stages`` box heads with increasing IoU thresholds.

    Args:
        num_stages: number of stages (3 in the paper).
        stage_loss_weights: per-stage weight of the losses ([1, 0.5, 0.25] in MMDetection's configs).
        bbox_roi_extractor: one config for all stages or a list of ``num_stages``.
        bbox_head: one config for all stages or a list of ``num_stages`` (each stage usually has a
            coder with tighter ``target_stds`` and ``reg_class_agnostic=True``).
        shared_head: not supported (MMDetection 3.x does not support it in the cascade either).
        train_cfg: list of ``num_stages`` dicts with ``assigner``, ``sampler`` (and ``pos_weight``);
            None for inference only.
        test_cfg: ``score_thr``, ``nms``, ``max_per_img`` for the last stage's post-processing.
    """

    def __init__(self, num_stages: int, stage_loss_weights: Sequence[float], bbox_roi_extractor=None,
                 bbox_head=None, mask_roi_extractor=None, mask_head=None, shared_head=None,
                 train_cfg: Optional[Sequence[dict]] = None, test_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_stages < 1:
            raise ValueError(f'CascadeRoIHead: num_stages must be >= 1, got {num_stages}')
        if len(stage_loss_weights) != num_stages:
            raise ValueError(f'CascadeRoIHead: stage_loss_weights {list(stage_loss_weights)} needs one weight '
                             f'per stage (num_stages={num_stages})')
        if bbox_roi_extractor is None or bbox_head is None:
            raise ValueError('CascadeRoIHead needs bbox_roi_extractor and bbox_head configs')
        if mask_head is not None or mask_roi_extractor is not None or shared_head is not None:
            raise ValueError('CascadeRoIHead: mask_head / mask_roi_extractor / shared_head are not supported here '
                             '(box-only; MMDetection 3.x has no shared head in the cascade either): remove them '
                             'from the config (see docs/MMDET_DIFFERENCES.md)')
        self.num_stages = num_stages
        self.stage_loss_weights = list(stage_loss_weights)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        # mmengine's ModuleList, not nn's: init_weights reaches the heads' init_cfg through it.
        self.bbox_roi_extractor = ModuleList(
            build_or_use(MODELS, c) for c in _per_stage(bbox_roi_extractor, num_stages, 'bbox_roi_extractor'))
        self.bbox_head = ModuleList(
            build_or_use(MODELS, c) for c in _per_stage(bbox_head, num_stages, 'bbox_head'))
        self.bbox_assigner: list = []
        self.bbox_sampler: list = []
        if train_cfg is not None:
            if not isinstance(train_cfg, (list, tuple)) or len(train_cfg) != num_stages:
                raise ValueError(f'CascadeRoIHead: train_cfg (train_cfg.rcnn) must be a list of {num_stages} '
                                 'per-stage dicts (assigner, sampler, pos_weight), got '
                                 f'{type(train_cfg).__name__}')
            for stage, cfg in enumerate(train_cfg):
                require_cfg(cfg, ('assigner', 'sampler'), f'CascadeRoIHead train_cfg.rcnn[{stage}]')
                self.current_stage = stage  # MMDetection's samplers may read it from the context
                self.bbox_assigner.append(build_or_use(TASK_UTILS, cfg['assigner']))
                self.bbox_sampler.append(build_or_use(TASK_UTILS, cfg['sampler'], default_args=dict(context=self)))

    @property
    def with_bbox(self) -> bool:
        return True

    def _bbox_forward(self, stage: int, x: Sequence[Tensor], rois: Tensor) -> Tuple[Tensor, Tensor]:
        """(R, 5) rois -> stage's cls_score (R, num_classes + 1), bbox_pred (R, 4C or 4)."""
        extractor = self.bbox_roi_extractor[stage]
        return self.bbox_head[stage](extractor(x[:extractor.num_inputs], rois))

    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: Sequence[DetDataSample]) -> dict:
        """Losses ``s{t}.loss_cls``, ``s{t}.loss_bbox`` (times ``stage_loss_weights[t]``), ``s{t}.acc``.

        Args:
            x: feature pyramid, per level (B, C, H_l, W_l).
            rpn_results_list: per image proposals InstanceData(bboxes (N_i, 4)).
            batch_data_samples: with ``gt_instances`` (and optional ``ignored_instances``).
        """
        if self.train_cfg is None:
            raise ValueError('CascadeRoIHead.loss needs train_cfg (a list of per-stage assigner/sampler); build '
                             'it through a detector with train_cfg.rcnn')
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(f'CascadeRoIHead: {len(rpn_results_list)} proposal lists for '
                             f'{len(batch_data_samples)} images')
        gts, ignores, metas = unpack_gt_instances(batch_data_samples)
        proposals = [res.bboxes.detach() for res in rpn_results_list]
        losses = dict()
        for stage in range(self.num_stages):
            self.current_stage = stage
            sampling_results = []
            for i, (boxes, gt, ignore) in enumerate(zip(proposals, gts, ignores)):
                pred = InstanceData(priors=boxes)
                assign_result = self.bbox_assigner[stage].assign(pred, gt, ignore)
                sampling_results.append(self.bbox_sampler[stage].sample(
                    assign_result, pred, gt, feats=[lvl[i][None] for lvl in x]))
            rois = bbox2roi([res.priors for res in sampling_results])
            cls_score, bbox_pred = self._bbox_forward(stage, x, rois)
            head = self.bbox_head[stage]
            out = head.loss_and_target(cls_score, bbox_pred, rois, sampling_results, self.train_cfg[stage])
            weight = self.stage_loss_weights[stage]
            for name, value in out['loss_bbox'].items():
                losses[f's{stage}.{name}'] = value * weight if 'loss' in name else value
            if stage < self.num_stages - 1:
                # The next stage trains on these boxes as given: no gradient through the refinement.
                with torch.no_grad():
                    refined = head.refine_bboxes(
                        sampling_results, dict(rois=rois, cls_score=cls_score.detach(),
                                               bbox_pred=_detach(bbox_pred), bbox_targets=out['bbox_targets']),
                        metas)
                if refined is None:  # no RoI at all in the batch
                    break
                proposals = [res.bboxes for res in refined]
        return losses

    def _refine_roi(self, x: Sequence[Tensor], rois: Tensor, batch_img_metas: List[dict],
                    counts: Sequence[int]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Run every stage at test time.

        Returns:
            per image: the last stage's input rois (R_i, 5), the stage-averaged cls logits
            (R_i, num_classes + 1), the last stage's bbox_pred (R_i, 4C or 4).
        """
        ms_scores = []
        for stage in range(self.num_stages):
            cls_score, bbox_pred = self._bbox_forward(stage, x, rois)
            ms_scores.append(cls_score)
            head = self.bbox_head[stage]
            # A tuple bbox_pred (SABL's bucket logits and offsets) is split by its head.
            bbox_preds = (list(bbox_pred.split(counts)) if isinstance(bbox_pred, Tensor)
                          else list(head.bbox_pred_split(bbox_pred, counts)))
            if stage < self.num_stages - 1:
                label = cls_score[:, :head.num_classes].argmax(dim=1)
                refined = [torch.cat([r[:, :1], head.regress_by_class(r[:, 1:], lb, bp, meta)], dim=1)
                           for r, lb, bp, meta in zip(rois.split(counts), label.split(counts),
                                                      bbox_preds, batch_img_metas)]
                rois = torch.cat(refined)
        cls_score = sum(ms_scores) / float(len(ms_scores))
        return list(rois.split(counts)), list(cls_score.split(counts)), bbox_preds

    def forward(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Optional[Sequence[DetDataSample]] = None) -> Tuple[Tensor, Tensor]:
        """Raw outputs for all proposals of the batch (``mode='tensor'``): the stage-averaged
        cls_score (R, num_classes + 1) and the last stage's bbox_pred (R, 4C or 4), the latter
        relative to the twice-refined RoIs (MMDetection returns the same two, per image)."""
        proposals = [res.bboxes for res in rpn_results_list]
        counts = [p.size(0) for p in proposals]
        if batch_data_samples is None:
            raise ValueError('CascadeRoIHead.forward needs batch_data_samples (img_shape clips the refined boxes)')
        metas = [s.metainfo for s in batch_data_samples]
        _, cls_scores, bbox_preds = self._refine_roi(x, bbox2roi(proposals), metas, counts)
        if isinstance(bbox_preds[0], Tensor):
            return torch.cat(cls_scores), torch.cat(bbox_preds)
        return torch.cat(cls_scores), tuple(torch.cat(p) for p in zip(*bbox_preds))

    def predict(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Sequence[DetDataSample], rescale: bool = False) -> List[InstanceData]:
        """Detections per image: InstanceData(bboxes (K, 4), scores (K,), labels (K,)); with ``rescale``
        in original-image pixels."""
        metas = [s.metainfo for s in batch_data_samples]
        proposals = [res.bboxes for res in rpn_results_list]
        counts = [p.size(0) for p in proposals]
        rois = bbox2roi(proposals)
        if rois.size(0) == 0:
            return [empty_instances(rois.device) for _ in metas]
        rois, cls_scores, bbox_preds = self._refine_roi(x, rois, metas, counts)
        return self.bbox_head[-1].predict_by_feat(rois, cls_scores, bbox_preds, metas, self.test_cfg,
                                                  rescale=rescale)
