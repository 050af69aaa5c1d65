"""``DynamicRoIHead``: Dynamic R-CNN (Zhang et al., 2020): the RoI head's IoU threshold and the
SmoothL1 ``beta`` follow the statistics of training instead of staying fixed. MMDetection's name,
arguments (``train_cfg.dynamic_rcnn``) and update rule:

- every iteration, per image, the ``iou_topk``-th largest IoU of the proposals with their best gt;
  the mean over images is recorded;
- every iteration, over the positives of the batch, the ``beta_topk * num_images``-th smallest
  ``mean(|dx|, |dy|)`` of the regression targets is recorded;
- every ``update_iter_interval`` iterations: the assigner's ``pos_iou_thr = neg_iou_thr = min_pos_iou
  = max(initial_iou, mean(iou history))``, the loss's ``beta = min(initial_beta, median(beta
  history))`` (unchanged when the median is ~0 or nothing was recorded); the histories restart.

The statistics stay on the device as tensors; they are read to the host only at an update, not each
iteration.
"""
from typing import List, Sequence

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS
from ...structures import DetDataSample
from .standard_roi_head import StandardRoIHead

EPS = 1e-15


@MODELS.register_module()
class DynamicRoIHead(StandardRoIHead):
    """StandardRoIHead with dynamic label assignment and dynamic SmoothL1 beta.

    Args:
        **kwargs: ``StandardRoIHead`` arguments; ``train_cfg`` needs ``dynamic_rcnn=dict(iou_topk,
            beta_topk, update_iter_interval, initial_iou, initial_beta)`` and the box head's
            ``loss_bbox`` must be a ``SmoothL1Loss`` (its ``beta`` is what changes).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if type(self.bbox_head.loss_bbox).__name__ != 'SmoothL1Loss':
            raise ValueError(f'DynamicRoIHead: bbox_head.loss_bbox must be SmoothL1Loss (its beta is updated), '
                             f'got {type(self.bbox_head.loss_bbox).__name__}')
        if self.train_cfg is not None and 'dynamic_rcnn' not in self.train_cfg:
            raise ValueError('DynamicRoIHead: train_cfg.rcnn needs dynamic_rcnn=dict(iou_topk=75, beta_topk=10, '
                             'update_iter_interval=100, initial_iou=0.4, initial_beta=1.0)')
        self.iou_history: List[Tensor] = []
        self.beta_history: List[Tensor] = []

    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: Sequence[DetDataSample]) -> dict:
        """``loss_cls``, ``loss_bbox``, ``acc``, recording the IoU / beta statistics (see the module doc)."""
        if self.train_cfg is None:
            raise ValueError('DynamicRoIHead.loss needs train_cfg (assigner, sampler, dynamic_rcnn)')
        cfg = self.train_cfg['dynamic_rcnn']
        sampling_results, assign_results = self.assign_and_sample(x, rpn_results_list, batch_data_samples)
        # k-th largest IoU of each image's proposals (images without proposals say nothing).
        kth = [torch.topk(res.max_overlaps, min(cfg['iou_topk'], res.max_overlaps.numel()))[0][-1]
               for res in assign_results if res.max_overlaps.numel() > 0]
        if kth:
            self.iou_history.append(torch.stack(kth).float().mean())
        out = self.bbox_loss(x, sampling_results)
        _, _, bbox_targets, bbox_weights = out['bbox_targets']
        pos = bbox_weights[:, 0] > 0
        # k-th smallest mean(|dx|, |dy|) of the positives' targets; masked instead of indexed so no
        # host sync: non-positives sort last (inf).
        targets = torch.where(pos, bbox_targets[:, :2].abs().mean(dim=1), bbox_targets.new_tensor(float('inf')))
        k = min(cfg['beta_topk'] * len(sampling_results), sum(res.pos_priors.size(0) for res in sampling_results))
        if k > 0:
            self.beta_history.append(torch.sort(targets)[0][k - 1])
        if len(self.iou_history) % cfg['update_iter_interval'] == 0 and self.iou_history:
            self.update_hyperparameters()
        return out['loss_bbox']

    def update_hyperparameters(self):
        """Set the assigner's IoU thresholds and the loss's beta from the histories; returns (iou_thr, beta)."""
        cfg = self.train_cfg['dynamic_rcnn']
        new_iou_thr = max(cfg['initial_iou'], torch.stack(self.iou_history).mean().item())
        self.iou_history = []
        self.bbox_assigner.pos_iou_thr = new_iou_thr
        self.bbox_assigner.neg_iou_thr = new_iou_thr
        self.bbox_assigner.min_pos_iou = new_iou_thr
        # numpy's median of an even count is the mean of the two middle values; torch's is the lower one.
        median = torch.quantile(torch.stack(self.beta_history).float(), 0.5).item() if self.beta_history else None
        if median is None or median < EPS:
            new_beta = self.bbox_head.loss_bbox.beta
        else:
            new_beta = min(cfg['initial_beta'], median)
        self.beta_history = []
        self.bbox_head.loss_bbox.beta = new_beta
        return new_iou_thr, new_beta
