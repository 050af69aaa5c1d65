"""``GARPNHead``: the guided-anchoring RPN (MMDetection's ``ga-rpn`` / ``ga-faster-rcnn`` configs).

A 3x3 ``rpn_conv`` + ReLU, then ``GuidedAnchorHead`` (location, shape, feature adaption, masked
objectness / deltas). Proposals: per level, the locations kept by the location branch
(``sigmoid(loc) >= loc_filter_thr`` at inference), their ``nms_pre`` best guided anchors decoded,
small boxes dropped, NMS per level keeping ``nms_post``; then the ``max_per_img`` best of the image
(or, with ``nms_across_levels``, one more NMS over all levels).
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor, nn
from torchvision.ops import nms

from ...registry import MODELS
from ..postprocess import rpn_level_maps
from ..utils import require_cfg
from .guided_anchor_head import GuidedAnchorHead


@MODELS.register_module()
class GARPNHead(GuidedAnchorHead):
    """Guided-anchoring RPN head; ``num_classes`` must be 1. Other args: ``GuidedAnchorHead``."""

    def __init__(self, in_channels: int, num_classes: int = 1,
                 init_cfg=dict(type='Normal', layer='Conv2d', std=0.01,
                               override=dict(type='Normal', name='conv_loc', std=0.01, bias_prob=0.01)),
                 **kwargs) -> None:
        if num_classes != 1:
            raise ValueError(f'GARPNHead: num_classes must be 1 (object vs background), got {num_classes}')
        super().__init__(num_classes=num_classes, in_channels=in_channels, init_cfg=init_cfg, **kwargs)

    def _init_layers(self) -> None:
        self.rpn_conv = nn.Conv2d(self.in_channels, self.feat_channels, 3, padding=1)
        super()._init_layers()

    def forward_single(self, x: Tensor):
        """(B, C, H, W) -> objectness (B, 1, H, W), deltas (B, 4, H, W), shape (B, 2, H, W), loc (B, 1, H, W)."""
        return super().forward_single(F.relu(self.rpn_conv(x)))

    def loss_by_feat(self, cls_scores, bbox_preds, shape_preds, loc_preds, batch_gt_instances, batch_img_metas,
                     batch_gt_instances_ignore=None) -> dict:
        """``loss_rpn_cls``, ``loss_rpn_bbox``, ``loss_anchor_shape``, ``loss_anchor_loc``: one scalar
        per level each. Every gt box counts as an object (label 0)."""
        objects = [InstanceData(bboxes=gt.bboxes, labels=torch.zeros_like(gt.labels)) for gt in batch_gt_instances]
        losses = super().loss_by_feat(cls_scores, bbox_preds, shape_preds, loc_preds, objects, batch_img_metas,
                                      batch_gt_instances_ignore)
        return dict(loss_rpn_cls=losses['loss_cls'], loss_rpn_bbox=losses['loss_bbox'],
                    loss_anchor_shape=losses['loss_shape'], loss_anchor_loc=losses['loss_loc'])

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor], shape_preds: List[Tensor],
                        loc_preds: List[Tensor], batch_img_metas: List[dict], cfg: Optional[dict] = None,
                        rescale: bool = False) -> List[InstanceData]:
        """Proposals of every image: InstanceData(bboxes (K, 4), scores (K,) descending, labels zeros),
        K <= ``max_per_img``.

        Args:
            cfg: ``nms_pre``, ``nms_post``, ``max_per_img``, ``nms`` (type 'nms'), ``min_bbox_size``,
                optional ``nms_across_levels``; defaults to ``test_cfg``.
        """
        cfg = self.test_cfg if cfg is None else cfg
        require_cfg(cfg, ('nms_pre', 'nms_post', 'max_per_img', 'nms', 'min_bbox_size'),
                    'GARPNHead proposal cfg (test_cfg.rpn / train_cfg.rpn_proposal)')
        if cfg['nms'].get('type', 'nms') != 'nms':
            raise ValueError(f"GARPNHead: only nms type 'nms' is supported (as in MMDetection), got {cfg['nms']}")
        iou = cfg['nms']['iou_threshold']
        sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        squares = self.square_anchor_generator.grid_priors(sizes, device=cls_scores[0].device)
        guided = self.guided_anchors(squares, shape_preds)
        results = []
        for i, meta in enumerate(batch_img_metas):
            boxes, scores = [], []
            for lvl in range(len(sizes)):
                loc = loc_preds[lvl][i].detach().sigmoid().reshape(-1)
                # In training every location proposes (the location branch is still learning).
                keep = loc >= (0.0 if self.training else self.loc_filter_thr)
                score, deltas = rpn_level_maps(cls_scores[lvl][i], bbox_preds[lvl][i], self.cls_out_channels,
                                               self.use_sigmoid_cls)
                score, deltas = score[keep], deltas[keep]
                anchors = guided[lvl][i][keep]
                if 0 < cfg['nms_pre'] < score.numel():
                    score, top = score.topk(cfg['nms_pre'])
                    deltas, anchors = deltas[top], anchors[top]
                props = self.bbox_coder.decode(anchors, deltas, max_shape=meta['img_shape'][:2])
                if cfg['min_bbox_size'] >= 0:
                    wh = props[:, 2:] - props[:, :2]
                    ok = (wh[:, 0] > cfg['min_bbox_size']) & (wh[:, 1] > cfg['min_bbox_size'])
                    props, score = props[ok], score[ok]
                kept = nms(props, score, iou)[:cfg['nms_post']]
                boxes.append(props[kept])
                scores.append(score[kept])
            box, score = torch.cat(boxes), torch.cat(scores)
            if cfg.get('nms_across_levels', False):
                kept = nms(box, score, iou)[:cfg['max_per_img']]
            else:
                kept = score.topk(min(cfg['max_per_img'], score.numel())).indices
            box, score = box[kept], score[kept]
            if rescale:
                sf = meta['scale_factor']
                box = box / box.new_tensor([sf[0], sf[1], sf[0], sf[1]])
            results.append(InstanceData(bboxes=box, scores=score, labels=torch.zeros_like(score, dtype=torch.long)))
        return results
