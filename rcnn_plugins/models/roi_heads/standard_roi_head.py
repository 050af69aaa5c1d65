"""``StandardRoIHead``: Faster R-CNN's second stage (MMDetection 3.x keys and semantics).

Training: per image, assign the RPN proposals (plus the gt boxes, via the sampler's
``add_gt_as_proposals``) to gt boxes and sample a fixed number of RoIs; pool their features and
apply the box head's losses. Inference: pool the proposals' features, score and refine them.
"""
from typing import List, Optional, Sequence, Tuple

from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS, TASK_UTILS, build_or_use
from ...structures import DetDataSample, bbox2roi
from ..utils import empty_instances, require_cfg, unpack_gt_instances


@MODELS.register_module()
class StandardRoIHead(BaseModule):
    """RoI head with a box branch.

    Args:
        bbox_roi_extractor: config of the RoI feature extractor (SingleRoIExtractor).
        bbox_head: config of the box head (Shared2FCBBoxHead).
        train_cfg: ``assigner``, ``sampler`` (and ``pos_weight``) for training; None for inference only.
        test_cfg: ``score_thr``, ``nms``, ``max_per_img``.
        shared_head: layers run on every pooled RoI feature before the box head (the C4 detectors'
            ``ResLayer``: ResNet's stage 4 on 14x14 crops of stage 3); None for FPN heads.
        mask_roi_extractor, mask_head: accepted as None only (box-only detectors).
    """

    def __init__(self, bbox_roi_extractor: dict, bbox_head: dict, train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg=None, shared_head: Optional[dict] = None,
                 mask_roi_extractor=None, mask_head=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if mask_roi_extractor is not None or mask_head is not None:
            raise ValueError(f'{type(self).__name__}: mask_roi_extractor / mask_head are not supported (box-only '
                             'detectors); remove them from the config')
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if shared_head is not None:
            self.shared_head = build_or_use(MODELS, shared_head)
        self.bbox_roi_extractor = build_or_use(MODELS, bbox_roi_extractor)
        self.bbox_head = build_or_use(MODELS, bbox_head)
        if train_cfg is not None:
            require_cfg(train_cfg, ('assigner', 'sampler'), 'StandardRoIHead train_cfg (train_cfg.rcnn)')
            self.bbox_assigner = build_or_use(TASK_UTILS, train_cfg['assigner'])
            # Every sampler gets the head (MMDetection's interface): OHEMSampler runs its box branch.
            self.bbox_sampler = build_or_use(TASK_UTILS, train_cfg['sampler'], default_args=dict(context=self))

    @property
    def with_shared_head(self) -> bool:
        return getattr(self, 'shared_head', None) is not None

    def _bbox_forward(self, x: Sequence[Tensor], rois: Tensor) -> Tuple[Tensor, Tensor]:
        """(R, 5) rois -> cls_score (R, num_classes + 1), bbox_pred (R, 4*C or 4)."""
        feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            feats = self.shared_head(feats)
        return self.bbox_head(feats)

    def forward(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Optional[Sequence[DetDataSample]] = None) -> Tuple[Tensor, Tensor]:
        """Raw outputs for all proposals of the batch (``mode='tensor'``): (cls_score, bbox_pred)."""
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        return self._bbox_forward(x, rois)

    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: Sequence[DetDataSample]) -> dict:
        """Box losses ``loss_cls``, ``loss_bbox`` and ``acc``.

        Args:
            x: feature pyramid, per level (B, C, H_l, W_l).
            rpn_results_list: per image proposals InstanceData(bboxes (N_i, 4), ...), detached.
            batch_data_samples: with ``gt_instances`` (and optional ``ignored_instances``).
        """
        if self.train_cfg is None:
            raise ValueError('StandardRoIHead.loss needs train_cfg (assigner, sampler); '
                             'build it with train_cfg or through a detector with train_cfg.rcnn')
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(f'StandardRoIHead: {len(rpn_results_list)} proposal lists for '
                             f'{len(batch_data_samples)} images')
        sampling_results, _ = self.assign_and_sample(x, rpn_results_list, batch_data_samples)
        return self.bbox_loss(x, sampling_results)['loss_bbox']

    def assign_and_sample(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                          batch_data_samples: Sequence[DetDataSample]) -> Tuple[list, list]:
        """Per image: assign the proposals to the gt boxes, then sample RoIs.

        Returns:
            (sampling_results, assign_results), one of each per image.
        """
        gts, ignores, _ = unpack_gt_instances(batch_data_samples)
        sampling_results, assign_results = [], []
        for i, (proposals, gt, ignore) in enumerate(zip(rpn_results_list, gts, ignores)):
            pred = InstanceData(priors=proposals.bboxes.detach())
            assign_result = self.bbox_assigner.assign(pred, gt, ignore)
            # feats: this image's maps, (1, C, H_l, W_l) per level, for samplers that score RoIs (OHEM).
            sampling_results.append(self.bbox_sampler.sample(assign_result, pred, gt,
                                                             feats=[lvl[i][None] for lvl in x]))
            assign_results.append(assign_result)
        return sampling_results, assign_results

    def bbox_loss(self, x: Sequence[Tensor], sampling_results: Sequence) -> dict:
        """Box branch on the sampled RoIs: dict(cls_score, bbox_pred, rois, loss_bbox (dict of losses),
        bbox_targets (labels, label_weights, bbox_targets, bbox_weights))."""
        rois = bbox2roi([res.priors for res in sampling_results])
        cls_score, bbox_pred = self._bbox_forward(x, rois)
        out = self.bbox_head.loss_and_target(cls_score, bbox_pred, rois, sampling_results, self.train_cfg)
        return dict(out, cls_score=cls_score, bbox_pred=bbox_pred, rois=rois)

    def predict(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Sequence[DetDataSample], rescale: bool = False) -> List[InstanceData]:
        """Detections per image: InstanceData(bboxes (K, 4), scores (K,), labels (K,)).

        With ``rescale`` the boxes are in original-image pixels (divided by ``scale_factor``).
        """
        metas = [s.metainfo for s in batch_data_samples]
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals)
        if rois.size(0) == 0:
            return [empty_instances(rois.device) for _ in metas]
        cls_score, bbox_pred = self._bbox_forward(x, rois)
        counts = [p.size(0) for p in proposals]
        # A tuple bbox_pred (SABL's bucket logits and offsets) is split by its head.
        bbox_preds = (bbox_pred.split(counts) if isinstance(bbox_pred, Tensor)
                      else self.bbox_head.bbox_pred_split(bbox_pred, counts))
        return self.bbox_head.predict_by_feat(rois.split(counts), cls_score.split(counts), bbox_preds,
                                              metas, self.test_cfg, rescale=rescale)
