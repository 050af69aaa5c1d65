"""The new losses and samplers as plugins of the existing Faster R-CNN, chosen by registry name:
Libra's sampler + BalancedL1Loss in the RoI head, GIoU loss on the RPN, IoU-family losses with
reg_decoded_bbox=True in both heads (the heads decode before the loss: checked with zero deltas,
where the decoded boxes are the priors themselves). Each runs a real tiny loss step."""
import copy
import os

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torchvision.ops import generalized_box_iou_loss

from rcnn_plugins.models.losses import GIoULoss
from rcnn_plugins.registry import MODELS
from rcnn_plugins.structures import DetDataSample
from repo_paths import REPO_ROOT

CFG = os.path.join(REPO_ROOT, 'configs', '_base_', 'models', 'faster-rcnn_r50_fpn.py')
GT = torch.tensor([[20., 30., 90., 100.], [60., 10., 120., 70.]])


def tiny_cfg():
    cfg = copy.deepcopy(Config.fromfile(CFG).model)
    cfg.backbone.update(depth=18, init_cfg=None)
    cfg.neck.in_channels = [64, 128, 256, 512]
    cfg.neck.out_channels = cfg.rpn_head.in_channels = cfg.rpn_head.feat_channels = 32
    cfg.roi_head.bbox_roi_extractor.out_channels = cfg.roi_head.bbox_head.in_channels = 32
    cfg.roi_head.bbox_head.update(num_classes=2, fc_out_channels=64)
    cfg.train_cfg.rpn.sampler.num = 64
    cfg.train_cfg.rcnn.sampler.num = 64
    cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
    return cfg


def loss_step(cfg):
    init_default_scope('rcnn_plugins')
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    g = torch.Generator().manual_seed(1)
    s = DetDataSample(metainfo=dict(img_shape=(128, 160), ori_shape=(128, 160), scale_factor=(1., 1.)))
    s.gt_instances = InstanceData(bboxes=GT.clone(), labels=torch.tensor([0, 1]))
    data = model.data_preprocessor(dict(inputs=[torch.randint(0, 256, (3, 128, 160), generator=g,
                                                              dtype=torch.uint8)], data_samples=[s]), True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert torch.isfinite(total) and grads and all(torch.isfinite(gr).all() for gr in grads)
    return model, losses


def test_libra_sampler_and_balanced_l1_in_faster_rcnn():
    cfg = tiny_cfg()
    cfg.roi_head.bbox_head.loss_bbox = dict(type='BalancedL1Loss', alpha=0.5, gamma=1.5, beta=1.0, loss_weight=1.0)
    cfg.train_cfg.rpn.sampler.neg_pos_ub = 5
    cfg.train_cfg.rcnn.sampler = dict(
        type='CombinedSampler', num=64, pos_fraction=0.25, add_gt_as_proposals=True,
        pos_sampler=dict(type='InstanceBalancedPosSampler'),
        neg_sampler=dict(type='IoUBalancedNegSampler', floor_thr=-1, floor_fraction=0, num_bins=3))
    model, losses = loss_step(cfg)
    assert type(model.roi_head.bbox_sampler).__name__ == 'CombinedSampler'
    assert type(model.roi_head.bbox_head.loss_bbox).__name__ == 'BalancedL1Loss'
    assert losses['loss_bbox'] > 0


class Recording(GIoULoss):
    """GIoULoss that keeps the arguments of its calls."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []

    def forward(self, pred, target, weight=None, **kwargs):
        self.calls.append((pred.detach().clone(), target.clone(), None if weight is None else weight.clone()))
        return super().forward(pred, target, weight, **kwargs)


def test_giou_on_the_rpn_decodes_before_the_loss():
    cfg = tiny_cfg()
    cfg.rpn_head.update(reg_decoded_bbox=True, loss_bbox=dict(type='GIoULoss', loss_weight=2.0))
    model, losses = loss_step(cfg)
    assert len(losses['loss_rpn_bbox']) == 5 and sum(losses['loss_rpn_bbox']) > 0
    # Zero deltas: the decoded boxes are the anchors, the targets the gt boxes themselves.
    head = model.rpn_head
    head.loss_bbox = Recording(loss_weight=2.0)
    torch.nn.init.zeros_(head.rpn_reg.weight)
    torch.nn.init.zeros_(head.rpn_reg.bias)
    feats = [torch.rand(1, 32, 128 // s, 160 // s) for s in (4, 8, 16, 32, 64)]
    meta = dict(img_shape=(128, 160), pad_shape=(128, 160))
    torch.manual_seed(0)
    out = head.loss_by_feat(*head(feats), [InstanceData(bboxes=GT.clone(), labels=torch.tensor([0, 0]))], [meta])
    anchors = head.prior_generator.grid_priors([f.shape[-2:] for f in feats])
    num_pos, expected = 0, 0.
    for lvl, (pred, target, weight) in enumerate(head.loss_bbox.calls):
        torch.testing.assert_close(pred, anchors[lvl])
        pos = weight[:, 0] > 0
        num_pos += int(pos.sum())
        assert ((target[pos][:, None] == GT[None]).all(-1).any(-1)).all()  # each target is a gt box
        expected = expected + generalized_box_iou_loss(anchors[lvl][pos], target[pos], reduction='sum', eps=1e-6)
    assert num_pos > 0
    # Every level is averaged over the image's 64 sampled anchors (positives + negatives).
    total = sum(out['loss_rpn_bbox']).detach()
    torch.testing.assert_close(total, 2.0 * expected / (64 + torch.finfo(torch.float32).eps))


def test_iou_losses_in_the_roi_head_decode_before_the_loss():
    for loss in (dict(type='GIoULoss', loss_weight=10.0), dict(type='IoULoss', loss_weight=10.0),
                 dict(type='BoundedIoULoss', loss_weight=10.0), dict(type='CIoULoss'), dict(type='DIoULoss')):
        cfg = tiny_cfg()
        cfg.roi_head.bbox_head.update(reg_decoded_bbox=True, loss_bbox=loss)
        _, losses = loss_step(cfg)
        assert losses['loss_bbox'] > 0
    # Zero deltas in the RoI head: what reaches the loss are the RoIs themselves and the gt boxes.
    cfg = tiny_cfg()
    cfg.roi_head.bbox_head.update(reg_decoded_bbox=True, loss_bbox=Recording(loss_weight=10.0))
    model, _ = loss_step(cfg)
    head = model.roi_head.bbox_head
    head.loss_bbox.calls.clear()
    torch.nn.init.zeros_(head.fc_reg.weight)
    torch.nn.init.zeros_(head.fc_reg.bias)
    rois = torch.tensor([[0., 20., 30., 90., 100.], [0., 25., 30., 95., 100.], [0., 0., 0., 10., 10.]])
    labels = torch.tensor([0, 1, 2])
    targets = torch.cat([GT, torch.zeros(1, 4)])
    weights = torch.tensor([[1.] * 4, [1.] * 4, [0.] * 4])
    cls_score, bbox_pred = head(torch.rand(3, 32, 7, 7))
    out = head.loss(cls_score, bbox_pred, rois, labels, torch.ones(3), targets, weights)
    pred, target, _ = head.loss_bbox.calls[0]
    torch.testing.assert_close(pred, rois[:, 1:])
    expected = generalized_box_iou_loss(rois[:2, 1:], GT, reduction='sum', eps=1e-6) * 10 / 3  # avg over 3 RoIs
    torch.testing.assert_close(out['loss_bbox'], expected, atol=1e-5, rtol=1e-5)


def test_focal_loss_and_pseudo_sampler_on_the_rpn():
    cfg = tiny_cfg()
    cfg.rpn_head.loss_cls = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
    del cfg.train_cfg.rpn['sampler']
    model, losses = loss_step(cfg)
    assert type(model.rpn_head.sampler).__name__ == 'PseudoSampler'
    assert sum(losses['loss_rpn_cls']) > 0


LIBRA_SAMPLER = dict(type='CombinedSampler', num=64, pos_fraction=0.5, add_gt_as_proposals=False,
                     pos_sampler=dict(type='InstanceBalancedPosSampler'),
                     neg_sampler=dict(type='IoUBalancedNegSampler', floor_thr=-1, floor_fraction=0, num_bins=3))


def test_every_new_piece_in_the_rpn_too():
    """The same plugins in the RPN: decoded-box losses, BalancedL1Loss, the Libra samplers."""
    for loss_bbox, decoded, sampler in (
            (dict(type='BoundedIoULoss', loss_weight=1.0), True, None),
            (dict(type='CIoULoss'), True, None),
            (dict(type='IoULoss', mode='linear'), True, None),
            (dict(type='BalancedL1Loss'), False, LIBRA_SAMPLER),
            (dict(type='L1Loss'), False, dict(type='IoUBalancedNegSampler', num=64, pos_fraction=0.5,
                                              add_gt_as_proposals=False, floor_thr=0.1, floor_fraction=0.5))):
        cfg = tiny_cfg()
        cfg.rpn_head.update(reg_decoded_bbox=decoded, loss_bbox=loss_bbox)
        if sampler is not None:
            cfg.train_cfg.rpn.sampler = sampler
        model, losses = loss_step(cfg)
        assert sum(losses['loss_rpn_bbox']) > 0, (loss_bbox, sampler)


def test_legacy_1x_conventions_in_both_heads():
    """MMDetection 1.x's anchors and coder (legacy_1.x config) train and predict in the same model."""
    cfg = tiny_cfg()
    cfg.rpn_head.anchor_generator.update(type='LegacyAnchorGenerator', center_offset=0.5)
    cfg.rpn_head.bbox_coder = dict(type='LegacyDeltaXYWHBBoxCoder')
    cfg.roi_head.bbox_head.bbox_coder = dict(type='LegacyDeltaXYWHBBoxCoder', target_stds=[0.1, 0.1, 0.2, 0.2])
    cfg.roi_head.bbox_roi_extractor.roi_layer.update(sampling_ratio=2, aligned=False)
    model, losses = loss_step(cfg)
    assert losses['loss_bbox'] > 0 and sum(losses['loss_rpn_bbox']) > 0
    model.eval()
    s = DetDataSample(metainfo=dict(img_shape=(128, 160), ori_shape=(128, 160), scale_factor=(1., 1.)))
    data = model.data_preprocessor(dict(inputs=[torch.zeros(3, 128, 160, dtype=torch.uint8)], data_samples=[s]))
    with torch.no_grad():
        pred = model(**data, mode='predict')[0].pred_instances
    # The legacy decode clips to w - 1 / h - 1.
    assert pred.bboxes.numel() == 0 or (pred.bboxes[:, 2].max() <= 159 and pred.bboxes[:, 3].max() <= 127)
