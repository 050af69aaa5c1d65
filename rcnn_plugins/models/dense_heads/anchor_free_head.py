"""``AnchorFreeHead``: the base of point-based dense heads (FCOSHead builds on it).

Two towers of ``stacked_convs`` 3x3 ``ConvModule`` s (``cls_convs``, ``reg_convs``) then a 3x3
``conv_cls`` (``cls_out_channels``) and a 3x3 ``conv_reg`` (4 distances) at every location of every
level; priors are the points of ``MlvlPointGenerator(strides)`` (cell centres). State-dict keys and
defaults follow MMDetection 3.x.

Post-processing (``predict_by_feat``) is MMDetection's dense-head one: per level the ``nms_pre``
best (location, class) scores above ``score_thr``, decoded by ``bbox_coder``; then the scores are
multiplied by the optional per-location score factors (FCOS's centerness), boxes of at most
``min_bbox_size`` dropped, class-wise NMS over all levels and the best ``max_per_img`` kept.
Subclasses provide the targets and losses (``loss_by_feat``).

Tensor layout: a level's output ``(B, C, H, W)`` is flattened with
``permute(0, 2, 3, 1).reshape(B, H*W, C)``, the point order of ``MlvlPointGenerator.grid_priors``.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...registry import MODELS, TASK_UTILS, build_or_use
from ...structures import DetDataSample
from ..layers.nms import class_wise_nms
from ..utils import dense_head_loss, require_cfg


class AnchorFreeHead(BaseModule):
    """Anchor-free dense head (MMDetection's ``AnchorFreeHead``).

    Args:
        num_classes: foreground classes (1 as an RPN).
        in_channels: channels of each input feature map.
        feat_channels: channels of the tower convs.
        stacked_convs: convs per tower.
        strides: per level, the feature map's stride in pixels.
        dcn_on_last_conv: the last conv of each tower is a modulated deformable conv (``DCNv2``).
        conv_bias: bias in the tower convs; ``'auto'``: only without a norm layer.
        loss_cls, loss_bbox, bbox_coder: configs built from MODELS / TASK_UTILS.
        conv_cfg, norm_cfg: of the tower convs (e.g. ``dict(type='GN', num_groups=32)``).
        train_cfg / test_cfg: training settings / post-processing (``nms_pre``, ``score_thr``,
            ``min_bbox_size``, ``nms``, ``max_per_img``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 feat_channels: int = 256,
                 stacked_convs: int = 4,
                 strides: Sequence[int] = (4, 8, 16, 32, 64),
                 dcn_on_last_conv: bool = False,
                 conv_bias='auto',
                 loss_cls: dict = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
                 loss_bbox: dict = dict(type='IoULoss', loss_weight=1.0),
                 bbox_coder: dict = dict(type='DistancePointBBoxCoder'),
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg=dict(type='Normal', layer='Conv2d', std=0.01,
                               override=dict(type='Normal', name='conv_cls', std=0.01, bias_prob=0.01))) -> None:
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        if num_classes < 1:
            raise ValueError(f'{name}: num_classes must be >= 1, got {num_classes}')
        if not (conv_bias == 'auto' or isinstance(conv_bias, bool)):
            raise ValueError(f"{name}: conv_bias must be 'auto' or a bool, got {conv_bias!r}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.strides = strides
        self.dcn_on_last_conv = dcn_on_last_conv
        self.conv_bias = conv_bias
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.loss_cls = build_or_use(MODELS, loss_cls)
        self.use_sigmoid_cls = getattr(self.loss_cls, 'use_sigmoid', False)
        self.cls_out_channels = num_classes if self.use_sigmoid_cls else num_classes + 1
        self.loss_bbox = build_or_use(MODELS, loss_bbox)
        self.bbox_coder = build_or_use(TASK_UTILS, bbox_coder)
        self.prior_generator = build_or_use(TASK_UTILS, dict(type='MlvlPointGenerator', strides=strides))
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self._init_layers()

    # ------------------------------------------------------------------ layers
    def _init_layers(self) -> None:
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        self._init_predictor()

    def _tower(self) -> nn.ModuleList:
        convs = nn.ModuleList()
        for i in range(self.stacked_convs):
            conv_cfg = dict(type='DCNv2') if self.dcn_on_last_conv and i == self.stacked_convs - 1 else self.conv_cfg
            convs.append(ConvModule(self.in_channels if i == 0 else self.feat_channels, self.feat_channels, 3,
                                    stride=1, padding=1, conv_cfg=conv_cfg, norm_cfg=self.norm_cfg,
                                    bias=self.conv_bias))
        return convs

    def _init_predictor(self) -> None:
        self.conv_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.conv_reg = nn.Conv2d(self.feat_channels, 4, 3, padding=1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """(B, C_in, H, W) -> cls_score (B, cls_out, H, W), bbox_pred (B, 4, H, W) and the two
        towers' last features (B, feat_channels, H, W)."""
        cls_feat = x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        reg_feat = x
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        return self.conv_cls(cls_feat), self.conv_reg(reg_feat), cls_feat, reg_feat

    def _check_levels(self, x: list) -> None:
        if len(x) != self.prior_generator.num_levels:
            raise ValueError(f'{type(self).__name__}: got {len(x)} feature levels but strides '
                             f'{list(self.strides)} name {self.prior_generator.num_levels}; make them agree '
                             '(the neck\'s num_outs and the head\'s strides)')

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per level (B, C_in, H_l, W_l) -> (cls_scores, bbox_preds), one tensor per level."""
        x = list(x)
        self._check_levels(x)
        outs = [self.forward_single(feat)[:2] for feat in x]
        return [o[0] for o in outs], [o[1] for o in outs]

    # ------------------------------------------------------------------ training
    def loss(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample]) -> dict:
        return dense_head_loss(self, x, batch_data_samples)

    def loss_and_predict(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample],
                         proposal_cfg: Optional[dict] = None) -> Tuple[dict, List[InstanceData]]:
        """Losses and (detached) predictions of one forward pass; ``proposal_cfg`` overrides test_cfg."""
        return dense_head_loss(self, x, batch_data_samples, proposal_cfg, with_predictions=True)

    def loss_by_feat(self, *args, **kwargs) -> dict:
        raise NotImplementedError(f'{type(self).__name__} has no loss; use a subclass such as FCOSHead')

    # ------------------------------------------------------------------ inference
    def predict(self, x: Sequence[Tensor], batch_data_samples: Sequence[DetDataSample],
                rescale: bool = False) -> List[InstanceData]:
        metas = [s.metainfo for s in batch_data_samples]
        return self.predict_by_feat(*self(x), batch_img_metas=metas, rescale=rescale)

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None, batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[dict] = None, rescale: bool = False) -> List[InstanceData]:
        """Detections (or proposals) of every image.

        Args:
            cls_scores: per level (B, cls_out, H, W) logits; bbox_preds: per level (B, 4, H, W)
                distances in pixels (as the head returns them in eval mode); score_factors:
                per level (B, 1, H, W) logits multiplied (after a sigmoid) into the scores, or None.
            cfg: ``nms_pre`` (per level, <= 0: all), ``score_thr`` (default 0), ``min_bbox_size``
                (< 0: no filter), ``nms``, ``max_per_img``; defaults to ``test_cfg``.
            rescale: divide boxes by ``scale_factor`` (w, h) to get original-image pixels.

        Returns:
            per image InstanceData(bboxes (K, 4), scores (K,) descending, labels (K,)), K <= max_per_img.
        """
        cfg = self.test_cfg if cfg is None else cfg
        require_cfg(cfg, ('max_per_img', 'nms'), f'{type(self).__name__} test_cfg (test_cfg.rpn as an RPN)')
        device = cls_scores[0].device
        points = self.prior_generator.grid_priors([tuple(s.shape[-2:]) for s in cls_scores],
                                                  dtype=torch.float32, device=device)
        results = []
        for i, meta in enumerate(batch_img_metas):
            factors = None if score_factors is None else [f[i] for f in score_factors]
            results.append(self._predict_single([c[i] for c in cls_scores], [b[i] for b in bbox_preds],
                                                factors, points, meta, cfg, rescale))
        return results

    def _predict_single(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]], points: List[Tensor], meta: dict, cfg: dict,
                        rescale: bool) -> InstanceData:
        """One image: per level (cls_out, H, W) / (4, H, W) / (1, H, W) maps -> InstanceData."""
        nms_pre, score_thr = cfg.get('nms_pre', -1), cfg.get('score_thr', 0)
        boxes, scores, labels, factors = [], [], [], []
        for lvl, (cls_score, bbox_pred, lvl_points) in enumerate(zip(cls_scores, bbox_preds, points)):
            cls = cls_score.detach().float().permute(1, 2, 0).reshape(-1, self.cls_out_channels)
            # Softmax scores drop the background column (the last one).
            prob = cls.sigmoid() if self.use_sigmoid_cls else cls.softmax(-1)[:, :-1]
            # Every (location, class) pair above the threshold, the nms_pre best of them.
            valid = (prob > score_thr).nonzero()
            lvl_scores = prob[valid[:, 0], valid[:, 1]]
            if 0 < nms_pre < lvl_scores.numel():
                lvl_scores, order = lvl_scores.topk(nms_pre)
            else:
                lvl_scores, order = lvl_scores.sort(descending=True)
            loc, lvl_labels = valid[order].unbind(1)
            deltas = bbox_pred.detach().float().permute(1, 2, 0).reshape(-1, 4)[loc]
            boxes.append(self.bbox_coder.decode(lvl_points[loc], deltas, max_shape=meta['img_shape'][:2]))
            scores.append(lvl_scores)
            labels.append(lvl_labels)
            if score_factors is not None:
                factors.append(score_factors[lvl].detach().float().reshape(-1).sigmoid()[loc])
        boxes, scores, labels = torch.cat(boxes), torch.cat(scores), torch.cat(labels)
        if score_factors is not None:
            scores = scores * torch.cat(factors)
        if rescale:
            sf = meta['scale_factor']
            boxes = boxes / boxes.new_tensor([sf[0], sf[1], sf[0], sf[1]])
        min_size = cfg.get('min_bbox_size', -1)
        if min_size >= 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            keep = (wh[:, 0] > min_size) & (wh[:, 1] > min_size)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        bound = boxes.new_tensor(float(max(meta['img_shape'][:2])))
        if rescale:
            bound = bound / min(meta['scale_factor'])
        # The kept scores come from the NMS (soft-NMS decays them).
        keep, kept_scores = class_wise_nms(boxes, scores, labels, cfg['nms'], bound)
        keep, kept_scores = keep[:cfg['max_per_img']], kept_scores[:cfg['max_per_img']]
        return InstanceData(bboxes=boxes[keep], scores=kept_scores, labels=labels[keep])
