"""``RPNHead``: the region proposal network of Faster R-CNN (MMDetection 3.x keys and semantics).

A shared 3x3 conv + ReLU (``rpn_conv``) then two 1x1 convs: objectness (``rpn_cls``, A logits)
and box deltas (``rpn_reg``, A*4) at every location of every pyramid level. Proposals: per level
the ``nms_pre`` best anchors, decoded and clipped to the image, then NMS per level and the best
``max_per_img`` of the image.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...registry import MODELS
from ..postprocess import rpn_level_maps, rpn_proposals
from ..utils import require_cfg
from .anchor_head import AnchorHead


@MODELS.register_module()
class RPNHead(AnchorHead):
    """Region proposal head.

    Args:
        in_channels: channels of the (FPN) feature maps.
        num_classes: must be 1 (objectness); MMDetection's default.
        num_convs: number of 3x3 convs before the predictors (1: a plain ``nn.Conv2d``; more: a
            ``nn.Sequential`` of ``ConvModule``, keys ``rpn_conv.{i}.conv.*`` as MMDetection).
        **kwargs: ``AnchorHead`` arguments (feat_channels, anchor_generator, bbox_coder, losses,
            train_cfg, test_cfg).
    """

    def __init__(self, in_channels: int, num_classes: int = 1,
                 init_cfg=dict(type='Normal', layer='Conv2d', std=0.01), num_convs: int = 1, **kwargs) -> None:
        if num_classes != 1:
            raise ValueError(f'RPNHead: num_classes must be 1 (object vs background), got {num_classes}')
        if num_convs < 1:
            raise ValueError(f'RPNHead: num_convs must be >= 1, got {num_convs}')
        self.num_convs = num_convs
        super().__init__(num_classes=num_classes, in_channels=in_channels, init_cfg=init_cfg, **kwargs)

    def _init_layers(self) -> None:
        if self.num_convs > 1:
            self.rpn_conv = nn.Sequential(*[
                ConvModule(self.in_channels if i == 0 else self.feat_channels, self.feat_channels, 3,
                           padding=1, inplace=False) for i in range(self.num_convs)])
        else:
            self.rpn_conv = nn.Conv2d(self.in_channels, self.feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(self.feat_channels, self.num_base_priors * self.cls_out_channels, 1)
        self.rpn_reg = nn.Conv2d(self.feat_channels, self.num_base_priors * 4, 1)

    def forward_single(self, x: Tensor):
        """(B, C_in, H, W) -> objectness logits (B, A*cls_out, H, W), deltas (B, A*4, H, W)."""
        x = F.relu(self.rpn_conv(x))
        return self.rpn_cls(x), self.rpn_reg(x)

    def loss_by_feat(self, cls_scores, bbox_preds, batch_gt_instances, batch_img_metas,
                     batch_gt_instances_ignore=None) -> dict:
        """RPN losses ``loss_rpn_cls`` / ``loss_rpn_bbox``, each a list with one scalar per level (as
        MMDetection; mmengine's ``parse_losses`` sums them). The gt labels are 0 (object): the detector
        hands its RPN objectness-only copies of the samples (``detectors.base.objectness_samples``), as
        MMDetection's does, so any dense head can be the RPN."""
        losses = super().loss_by_feat(cls_scores, bbox_preds, batch_gt_instances, batch_img_metas,
                                      batch_gt_instances_ignore)
        return dict(loss_rpn_cls=losses['loss_cls'], loss_rpn_bbox=losses['loss_bbox'])

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor], batch_img_metas: List[dict],
                        cfg: Optional[dict] = None, rescale: bool = False) -> List[InstanceData]:
        """Proposals of every image.

        Args:
            cls_scores / bbox_preds: per level (B, A*cls_out, H, W) / (B, A*4, H, W). Detached here.
            batch_img_metas: per image metainfo with ``img_shape`` (h, w) (and ``scale_factor``
                (w, h) when ``rescale``).
            cfg: ``nms_pre`` (per level, <= 0: all), ``max_per_img``, ``nms``, ``min_bbox_size``
                (< 0: no filter); defaults to ``test_cfg``.
            rescale: divide boxes by ``scale_factor`` to get original-image pixels.

        Returns:
            per image InstanceData(bboxes (K, 4), scores (K,) sorted descending, labels (K,) zeros),
            K <= max_per_img.
        """
        anchors = self.prior_generator.grid_priors([tuple(s.shape[-2:]) for s in cls_scores],
                                                   device=cls_scores[0].device)
        return self.proposals_by_feat(cls_scores, bbox_preds, [anchors] * len(batch_img_metas), batch_img_metas,
                                      cfg, rescale)

    def proposals_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor], image_anchors: List[List[Tensor]],
                          batch_img_metas: List[dict], cfg: Optional[dict] = None,
                          rescale: bool = False) -> List[InstanceData]:
        """:meth:`predict_by_feat` on given anchors: ``image_anchors[i]`` are image i's per level
        (N_l, 4) anchors (the generator's grid, or a cascade stage's refined boxes)."""
        cfg = self.test_cfg if cfg is None else cfg
        require_cfg(cfg, ('max_per_img', 'nms'),
                    f'{type(self).__name__} proposal cfg (test_cfg.rpn / train_cfg.rpn_proposal)')
        device = cls_scores[0].device
        results = []
        # One image at a time through the function the export wrapper records (models/postprocess).
        for i, meta in enumerate(batch_img_metas):
            maps = [rpn_level_maps(c[i], r[i], self.cls_out_channels, self.use_sigmoid_cls)
                    for c, r in zip(cls_scores, bbox_preds)]
            sf = meta['scale_factor'] if rescale else None
            boxes, scores = rpn_proposals(
                [m[0] for m in maps], [m[1] for m in maps], image_anchors[i], self.bbox_coder,
                torch.tensor(meta['img_shape'][:2], dtype=torch.float32, device=device), cfg,
                None if sf is None else torch.tensor([sf[0], sf[1], sf[0], sf[1]], dtype=torch.float32,
                                                     device=device))
            results.append(InstanceData(bboxes=boxes, scores=scores,
                                        labels=torch.zeros_like(scores, dtype=torch.long)))
        return results
