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
from ..layers.nms import batched_nms
from ..utils import empty_instances, require_cfg
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
        MMDetection; mmengine's ``parse_losses`` sums them). Every gt box counts as class 0 (object)."""
        objects = [InstanceData(bboxes=gt.bboxes, labels=torch.zeros_like(gt.labels)) for gt in batch_gt_instances]
        losses = super().loss_by_feat(cls_scores, bbox_preds, objects, batch_img_metas, batch_gt_instances_ignore)
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
        cfg = self.test_cfg if cfg is None else cfg
        require_cfg(cfg, ('max_per_img', 'nms'), 'RPNHead proposal cfg (test_cfg.rpn / train_cfg.rpn_proposal)')
        num_imgs = cls_scores[0].size(0)
        device = cls_scores[0].device
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        priors = self.prior_generator.grid_priors(featmap_sizes, device=device)
        nms_pre = cfg.get('nms_pre', -1)

        # Top-k and decoding for the whole batch per level (same anchors for every image); the
        # proposals carry no gradient, and decoding runs in float32 even under autocast.
        mlvl_boxes, mlvl_scores, mlvl_ids = [], [], []
        for lvl, (cls, reg, anchors) in enumerate(zip(cls_scores, bbox_preds, priors)):
            cls = cls.detach().float().permute(0, 2, 3, 1).reshape(num_imgs, -1, self.cls_out_channels)
            reg = reg.detach().float().permute(0, 2, 3, 1).reshape(num_imgs, -1, 4)
            scores = cls.sigmoid()[..., 0] if self.use_sigmoid_cls else cls.softmax(-1)[..., 0]
            anchors = anchors.float()
            if 0 < nms_pre < scores.size(1):
                scores, inds = scores.topk(nms_pre, dim=1)
                reg = reg.gather(1, inds[..., None].expand(-1, -1, 4))
                anchors = anchors[inds]
            else:
                anchors = anchors.expand(num_imgs, -1, -1)
            mlvl_boxes.append(self.bbox_coder.decode(anchors, reg))
            mlvl_scores.append(scores)
            mlvl_ids.append(torch.full_like(scores, lvl, dtype=torch.long))
        boxes = torch.cat(mlvl_boxes, dim=1)
        scores = torch.cat(mlvl_scores, dim=1)
        level_ids = torch.cat(mlvl_ids, dim=1)
        # Clip to each image's own size (images of a batch differ): (B, 1, 4) upper bounds.
        hw = boxes.new_tensor([m['img_shape'][:2] for m in batch_img_metas])
        boxes = torch.min(boxes.clamp(min=0), hw[:, None, [1, 0, 1, 0]])

        min_size = cfg.get('min_bbox_size', -1)
        results = []
        for i, meta in enumerate(batch_img_metas):
            b, s, ids = boxes[i], scores[i], level_ids[i]
            if rescale:
                sf = meta['scale_factor']
                b = b / b.new_tensor([sf[0], sf[1], sf[0], sf[1]])
            if min_size >= 0:
                keep = ((b[:, 2] - b[:, 0]) > min_size) & ((b[:, 3] - b[:, 1]) > min_size)
                b, s, ids = b[keep], s[keep], ids[keep]
            if b.size(0) == 0:
                results.append(empty_instances(device))
                continue
            dets, keep = batched_nms(b, s, ids, cfg['nms'])
            dets, keep = dets[:cfg['max_per_img']], keep[:cfg['max_per_img']]
            results.append(InstanceData(bboxes=b[keep], scores=dets[:, -1],
                                        labels=torch.zeros_like(keep, dtype=torch.long)))
        return results
