"""``GridRoIHead``: Grid R-CNN's RoI head (Lu et al., CVPR 2019; MMDetection 3.x keys and semantics).

A ``StandardRoIHead`` whose box head only classifies (``with_reg=False``); the boxes come from the
``GridHead``. Training: the box head's classification loss on the sampled RoIs, then the positives,
jittered at random (centre and size by up to +-15 %, clipped to the image), at most ``max_num_grid``
of them at random, pooled by ``grid_roi_extractor`` (14x14) and ``loss_grid`` on their heatmaps.
Inference: the box head's detections (NMS on the proposals' own boxes), whose boxes the grid head
then relocates.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS, build_or_use
from ...structures import DetDataSample, bbox2roi
from ..utils import empty_instances
from .standard_roi_head import StandardRoIHead


@MODELS.register_module()
class GridRoIHead(StandardRoIHead):
    """Args:
        grid_roi_extractor: RoI extractor of the grid head (14x14); None shares ``bbox_roi_extractor``.
        grid_head: ``GridHead`` config.
        others: as :class:`StandardRoIHead`; ``train_cfg`` adds ``pos_radius`` (grid targets) and
            ``max_num_grid`` (192).
    """

    def __init__(self, grid_roi_extractor: Optional[dict], grid_head: dict, **kwargs) -> None:
        if grid_head is None:
            raise ValueError('GridRoIHead needs a grid_head config (GridHead)')
        super().__init__(**kwargs)
        if grid_roi_extractor is not None:
            self.grid_roi_extractor = build_or_use(MODELS, grid_roi_extractor)
            self.share_roi_extractor = False
        else:
            self.grid_roi_extractor = self.bbox_roi_extractor
            self.share_roi_extractor = True
        self.grid_head = build_or_use(MODELS, grid_head)

    def _grid_forward(self, x: Sequence[Tensor], rois: Tensor) -> dict:
        feats = self.grid_roi_extractor(x[:self.grid_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            feats = self.shared_head(feats)
        return self.grid_head(feats)

    @staticmethod
    def _random_jitter(sampling_results: Sequence, batch_img_metas: List[dict], amplitude: float = 0.15) -> None:
        """Move each positive's centre by up to ``amplitude`` of its size and scale its size by
        1 +- ``amplitude`` (uniform), clipped to [0, w - 1] x [0, h - 1]; in place on ``pos_priors``."""
        for res, meta in zip(sampling_results, batch_img_metas):
            boxes = res.pos_priors
            offsets = boxes.new_empty(boxes.size(0), 4).uniform_(-amplitude, amplitude)
            cxcy = (boxes[:, 2:] + boxes[:, :2]) / 2
            wh = (boxes[:, 2:] - boxes[:, :2]).abs()
            cxcy = cxcy + wh * offsets[:, :2]
            wh = wh * (1 + offsets[:, 2:])
            new = torch.cat([cxcy - wh / 2, cxcy + wh / 2], dim=1)
            h, w = meta['img_shape'][:2]
            res.pos_priors = torch.min(new.clamp(min=0), new.new_tensor([w - 1, h - 1, w - 1, h - 1]))

    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: Sequence[DetDataSample]) -> dict:
        """``loss_cls``, ``acc`` (box head) and ``loss_grid``."""
        if self.train_cfg is None:
            raise ValueError('GridRoIHead.loss needs train_cfg (assigner, sampler, pos_radius); build it through '
                             'a detector with train_cfg.rcnn')
        sampling_results, _ = self.assign_and_sample(x, rpn_results_list, batch_data_samples)
        out = self.bbox_loss(x, sampling_results, [s.metainfo for s in batch_data_samples])
        return out['loss_bbox']

    def bbox_loss(self, x: Sequence[Tensor], sampling_results: Sequence,
                  batch_img_metas: Optional[List[dict]] = None) -> dict:
        """The box head's losses plus ``loss_grid`` on (at most ``max_num_grid``) jittered positives."""
        if batch_img_metas is None:
            raise ValueError('GridRoIHead.bbox_loss needs batch_img_metas (img_shape clips the jittered RoIs)')
        out = super().bbox_loss(x, sampling_results)
        self._random_jitter(sampling_results, batch_img_metas)
        pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
        if pos_rois.size(0) == 0:
            return out
        num = pos_rois.size(0)
        sample_idx = torch.randperm(num, device=pos_rois.device)[:min(num, self.train_cfg.get('max_num_grid', 192))]
        grid_pred = self._grid_forward(x, pos_rois[sample_idx])
        out['loss_bbox'].update(self.grid_head.loss(grid_pred, sample_idx, sampling_results, self.train_cfg))
        return out

    def forward(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Optional[Sequence[DetDataSample]] = None) -> Tuple:
        """Raw outputs (``mode='tensor'``): cls_score (R, C + 1), (bbox_pred if the box head regresses),
        and the grid heatmaps of the first 100 proposals (MMDetection's)."""
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        cls_score, bbox_pred = self._bbox_forward(x, rois)
        outs = (cls_score,) if bbox_pred is None else (cls_score, bbox_pred)
        return outs + (self._grid_forward(x, rois[:100]),)

    def predict(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Sequence[DetDataSample], rescale: bool = False) -> List[InstanceData]:
        """Detections per image with grid-located boxes: InstanceData(bboxes (K, 4), scores (K,), labels (K,))."""
        metas = [s.metainfo for s in batch_data_samples]
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals)
        if rois.size(0) == 0:
            return [empty_instances(rois.device) for _ in metas]
        cls_score, bbox_pred = self._bbox_forward(x, rois)
        counts = [p.size(0) for p in proposals]
        if bbox_pred is None:
            # No regressor: the detections keep their proposals' boxes (zero deltas) until the grid moves them.
            bbox_pred = rois.new_zeros(rois.size(0), 4)
        results = self.bbox_head.predict_by_feat(rois.split(counts), cls_score.split(counts), bbox_pred.split(counts),
                                                 metas, self.test_cfg, rescale=False)
        grid_rois = bbox2roi([res.bboxes for res in results])
        if grid_rois.size(0) == 0:
            return results if not rescale else [self._rescale(r, m) for r, m in zip(results, metas)]
        return self.grid_head.predict_by_feat(self._grid_forward(x, grid_rois), results, metas, rescale=rescale)

    @staticmethod
    def _rescale(res: InstanceData, meta: dict) -> InstanceData:
        res.bboxes = res.bboxes / res.bboxes.new_tensor(meta['scale_factor']).repeat(2)
        return res
