"""``PISARoIHead``: Prime Sample Attention (Cao et al., CVPR 2020; MMDetection 3.x keys and semantics).

A ``StandardRoIHead`` whose box loss re-weights the samples by their importance:

- negatives: ``ScoreHLRSampler`` (train_cfg.rcnn.sampler) picks them by Score-HLR and returns their
  classification weights, which replace the negatives' label weights;
- positives: ``train_cfg.rcnn.isr`` (``k``, ``bias``) re-weights their classification loss by
  IoU-HLR (:func:`isr_p`);
- ``train_cfg.rcnn.carl`` (``k``, ``bias``) adds ``loss_carl``, the positives' box loss weighted by
  their class score (:func:`carl_loss`).

With a sampler that returns a plain sampling result and neither ``isr`` nor ``carl``, the losses are
``StandardRoIHead``'s. Same modules and state_dict keys as ``StandardRoIHead``.
"""
from typing import List, Optional, Sequence

from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS
from ...structures import DetDataSample, bbox2roi
from ..losses.pisa_loss import carl_loss, isr_p
from .standard_roi_head import StandardRoIHead


@MODELS.register_module()
class PISARoIHead(StandardRoIHead):
    """Args: as :class:`StandardRoIHead`; ``train_cfg`` may add ``isr=dict(k, bias)`` and
    ``carl=dict(k, bias)`` (MMDetection's PISA config: isr k=2 bias=0, carl k=1 bias=0.2)."""

    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: Sequence[DetDataSample]) -> dict:
        """``loss_cls``, ``loss_bbox``, ``acc`` (and ``loss_carl``) with PISA's sample weights."""
        if self.train_cfg is None:
            raise ValueError('PISARoIHead.loss needs train_cfg (assigner, sampler); build it through a detector '
                             'with train_cfg.rcnn')
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(f'PISARoIHead: {len(rpn_results_list)} proposal lists for '
                             f'{len(batch_data_samples)} images')
        sampled, _ = self.assign_and_sample(x, rpn_results_list, batch_data_samples)
        # ScoreHLRSampler returns (result, negative weights); other samplers a plain result.
        sampling_results = [s[0] if isinstance(s, tuple) else s for s in sampled]
        neg_label_weights = [s[1] if isinstance(s, tuple) else None for s in sampled]
        return self.bbox_loss(x, sampling_results, neg_label_weights)['loss_bbox']

    def bbox_loss(self, x: Sequence[Tensor], sampling_results: Sequence,
                  neg_label_weights: Optional[Sequence[Optional[Tensor]]] = None) -> dict:
        """Box branch on the sampled RoIs with the negatives' weights, ISR-P and CARL applied.

        Returns:
            dict(cls_score, bbox_pred, rois, loss_bbox (dict of losses), bbox_targets).
        """
        rois = bbox2roi([res.priors for res in sampling_results])
        cls_score, bbox_pred = self._bbox_forward(x, rois)
        head = self.bbox_head
        targets = head.get_targets(sampling_results, self.train_cfg)
        if neg_label_weights is not None and any(w is not None for w in neg_label_weights):
            labels, label_weights = targets[0], targets[1].clone()
            start = 0
            for res, weights in zip(sampling_results, neg_label_weights):  # per image: positives, then negatives
                num_pos, num_neg = res.pos_inds.numel(), res.neg_inds.numel()
                if weights is not None and num_neg > 0:
                    label_weights[start + num_pos:start + num_pos + num_neg] = weights.to(label_weights.dtype)
                start += num_pos + num_neg
            targets = (labels, label_weights) + tuple(targets[2:])
        isr_cfg = self.train_cfg.get('isr')
        if isr_cfg is not None:
            targets = isr_p(cls_score, bbox_pred, targets, rois, sampling_results, head.loss_cls, head.bbox_coder,
                            **isr_cfg, num_class=head.num_classes)
        losses = head.loss(cls_score, bbox_pred, rois, *targets)
        carl_cfg = self.train_cfg.get('carl')
        if carl_cfg is not None:
            losses.update(carl_loss(cls_score, targets[0], bbox_pred, targets[2], head.loss_bbox, **carl_cfg,
                                    num_class=head.num_classes))
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, rois=rois, loss_bbox=losses, bbox_targets=targets)
