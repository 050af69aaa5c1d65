"""``MultiInstanceRoIHead``: CrowdDet's RoI head (k predictions per RoI, EMD loss, set NMS).

A :class:`StandardRoIHead` whose box head is a ``MultiInstanceBBoxHead``: the assigner gives each
proposal its k best gts (``MultiInstanceAssigner``), the sampler keeps k targets per RoI
(``MultiInsRandomSampler``; it needs the image's ignore boxes, which this head passes), and with the
box head's refine module the refined outputs get a second loss and are the ones used for detection.
"""
from typing import List, Optional, Sequence, Tuple

from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS
from ...structures import DetDataSample, bbox2roi
from ..utils import empty_instances, unpack_gt_instances
from .standard_roi_head import StandardRoIHead


@MODELS.register_module()
class MultiInstanceRoIHead(StandardRoIHead):
    """RoI head for multi-instance prediction (CrowdDet).

    Args:
        num_instance: predictions per RoI (kept for MMDetection's signature; the box head and
            assigner carry their own ``num_instance``), 2.
        *args, **kwargs: :class:`StandardRoIHead` arguments.
    """

    def __init__(self, num_instance: int = 2, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.num_instance = num_instance

    def _bbox_forward(self, x: Sequence[Tensor], rois: Tensor) -> dict:
        """(R, 5) rois -> dict(cls_score (R, k*2), bbox_pred (R, k*4), bbox_feats (R, C, 7, 7)) plus
        ``cls_score_ref`` / ``bbox_pred_ref`` when the box head has the refine module."""
        feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            feats = self.shared_head(feats)
        outs = self.bbox_head(feats)
        results = dict(cls_score=outs[0], bbox_pred=outs[1], bbox_feats=feats)
        if len(outs) == 4:
            results.update(cls_score_ref=outs[2], bbox_pred_ref=outs[3])
        return results

    def forward(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Optional[Sequence[DetDataSample]] = None) -> Tuple[Tensor, ...]:
        """Raw box-head outputs for all proposals (``mode='tensor'``): 2 or 4 tensors."""
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            feats = self.shared_head(feats)
        return self.bbox_head(feats)

    def assign_and_sample(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                          batch_data_samples: Sequence[DetDataSample]) -> Tuple[list, list]:
        """Per image: the k best gts of every proposal, then a random RoI sample; the ignore boxes
        go to both (the sampler appends them to the proposals, as the assigner did)."""
        gts, ignores, _ = unpack_gt_instances(batch_data_samples)
        sampling_results, assign_results = [], []
        for proposals, gt, ignore in zip(rpn_results_list, gts, ignores):
            pred = InstanceData(priors=proposals.bboxes.detach())
            assign_result = self.bbox_assigner.assign(pred, gt, ignore)
            sampling_results.append(self.bbox_sampler.sample(assign_result, pred, gt,
                                                             batch_gt_instances_ignore=ignore))
            assign_results.append(assign_result)
        return sampling_results, assign_results

    def bbox_loss(self, x: Sequence[Tensor], sampling_results: Sequence) -> dict:
        """Box branch on the sampled RoIs: the forward outputs, ``rois`` and ``loss_bbox``:
        dict(loss_rcnn_emd) plus ``loss_rcnn_emd_ref`` (the refined outputs' EMD loss) with refine."""
        rois = bbox2roi([res.priors for res in sampling_results])
        results = self._bbox_forward(x, rois)
        out = self.bbox_head.loss_and_target(results['cls_score'], results['bbox_pred'], rois, sampling_results,
                                             self.train_cfg)
        results.update(out, rois=rois)
        if 'cls_score_ref' in results:
            ref = self.bbox_head.loss_and_target(results['cls_score_ref'], results['bbox_pred_ref'], rois,
                                                 sampling_results, self.train_cfg)
            results['loss_bbox'] = dict(results['loss_bbox'], loss_rcnn_emd_ref=ref['loss_bbox']['loss_rcnn_emd'])
        return results

    def predict(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Sequence[DetDataSample], rescale: bool = False) -> List[InstanceData]:
        """Detections per image after set NMS: InstanceData(bboxes (K, 4), scores (K,), labels (K,)),
        from the refined outputs when the box head has the refine module."""
        metas = [s.metainfo for s in batch_data_samples]
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals)
        if rois.size(0) == 0:
            return [empty_instances(rois.device) for _ in metas]
        results = self._bbox_forward(x, rois)
        refined = 'cls_score_ref' in results
        cls_score = results['cls_score_ref' if refined else 'cls_score']
        bbox_pred = results['bbox_pred_ref' if refined else 'bbox_pred']
        counts = [p.size(0) for p in proposals]
        return self.bbox_head.predict_by_feat(rois.split(counts), cls_score.split(counts), bbox_pred.split(counts),
                                              metas, self.test_cfg, rescale=rescale)
