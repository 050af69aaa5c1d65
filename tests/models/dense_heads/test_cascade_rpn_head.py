"""Cascade RPN: the adaptive conv against plain convs, stage-2 anchors, losses and proposals."""
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from rcnn_plugins.models.dense_heads import CascadeRPNHead
from rcnn_plugins.models.layers.adaptive_conv import AdaptiveConv, anchor_offsets
from rcnn_plugins.structures import DetDataSample

STRIDES = [4, 8]


def make_head(train=True):
    stages = [
        dict(type='StageCascadeRPNHead', in_channels=4, feat_channels=4,
             anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[1.0], strides=STRIDES),
             adapt_cfg=dict(type='dilation', dilation=3), bridged_feature=True, with_cls=False,
             reg_decoded_bbox=True,
             bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=(0.,) * 4, target_stds=(0.1, 0.1, 0.5, 0.5)),
             loss_bbox=dict(type='IoULoss', linear=True, loss_weight=7.0)),
        dict(type='StageCascadeRPNHead', in_channels=4, feat_channels=4,
             anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[1.0], strides=STRIDES),
             adapt_cfg=dict(type='offset'), bridged_feature=False, with_cls=True, reg_decoded_bbox=True,
             bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=(0.,) * 4, target_stds=(0.05, 0.05, 0.1, 0.1)),
             loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=0.7),
             loss_bbox=dict(type='IoULoss', linear=True, loss_weight=7.0)),
    ]
    train_cfg = [
        dict(assigner=dict(type='RegionAssigner', center_ratio=0.2, ignore_ratio=0.5), allowed_border=-1,
             pos_weight=-1),
        dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.7, min_pos_iou=0.3,
                           ignore_iof_thr=-1),
             sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False),
             allowed_border=-1, pos_weight=-1)] if train else None
    test_cfg = dict(nms_pre=50, max_per_img=10, nms=dict(type='nms', iou_threshold=0.8), min_bbox_size=0)
    head = CascadeRPNHead(num_classes=1, num_stages=2, stages=stages, train_cfg=train_cfg, test_cfg=test_cfg)
    head.init_weights()
    return head


def samples(n=2):
    out = []
    for i in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(32, 32), pad_shape=(32, 32), batch_input_shape=(32, 32),
                                        scale_factor=(1., 1.)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[4., 6., 20. + i, 26.]]), labels=torch.tensor([0]))
        out.append(s)
    return out


def feats(b=2):
    torch.manual_seed(0)
    return [torch.randn(b, 4, 32 // s, 32 // s) for s in STRIDES]


def test_anchor_offsets_hand_case():
    # One 8x8 anchor at (0, 0) on a 1x1 stride-4 level: centre (4, 4) px = cell 1 -> shift (1, 1);
    # size 8 px = 2 cells = the kernel's span at dilation 1 -> no stretch. Every tap: (dy, dx) = (1, 1).
    off = anchor_offsets(torch.tensor([[[0., 0., 8., 8.]]]), 4, (1, 1))
    assert torch.equal(off, torch.ones(1, 1, 18))
    # A 16x8 (w x h) anchor centred on the location (pixel 0): 4 x 2 cells, so x taps stretch 1 cell
    # outward, y taps stay.
    off = anchor_offsets(torch.tensor([[[-8., -4., 8., 4.]]]), 4, (1, 1)).view(9, 2)
    kx = torch.tensor([-1., 0., 1.] * 3)
    assert torch.allclose(off[:, 0], torch.zeros(9)) and torch.allclose(off[:, 1], kx)


def test_offset_mode_with_dilation_only_adaption_equals_dilated_conv():
    torch.manual_seed(0)
    h, w, stride, dil = 6, 7, 4, 3
    conv = AdaptiveConv(3, 5, adapt_type='offset')
    x = torch.randn(2, 3, h, w)
    # Anchors centred on their locations, 2 * dil cells wide: the sampling grid of a dilation-3 conv.
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    c = torch.stack([xs, ys, xs, ys], -1).reshape(-1, 4).float() * stride
    half = dil * stride
    anchors = (c + torch.tensor([-half, -half, half, half]))[None].expand(2, -1, -1)
    out = conv(x, anchor_offsets(anchors, stride, (h, w)))
    ref = F.conv2d(x, conv.conv.weight, None, padding=dil, dilation=dil)
    assert torch.allclose(out, ref, atol=1e-5)


def test_dilation_mode_is_a_dilated_conv():
    conv = AdaptiveConv(3, 5, dilation=3, adapt_type='dilation')
    x = torch.randn(1, 3, 9, 9)
    ref = F.conv2d(x, conv.conv.weight, conv.conv.bias, padding=3, dilation=3)
    assert torch.allclose(conv(x), ref, atol=1e-6)


def test_stage2_anchors_are_stage1_refined_boxes():
    head = make_head(train=False).eval()
    x, metas = feats(), [s.metainfo for s in samples()]
    seen = {}
    stage1_forward, stage2_forward = head.stages[0].stage_forward, head.stages[1].stage_forward

    def spy1(x, anchors):
        out = stage1_forward(x, anchors)
        seen['anchors1'], seen['deltas1'] = anchors, out[2]
        return out

    def spy2(x, anchors):
        seen['anchors2'] = anchors
        return stage2_forward(x, anchors)

    head.stages[0].stage_forward, head.stages[1].stage_forward = spy1, spy2
    with torch.no_grad():
        head._run(x, metas)
    stds = torch.tensor([0.1, 0.1, 0.5, 0.5])
    for lvl in range(len(STRIDES)):
        a = seen['anchors1'][lvl]                                          # (B, N, 4)
        d = seen['deltas1'][lvl].permute(0, 2, 3, 1).reshape(a.size(0), -1, 4) * stds
        # Delta decoding written out: centre shift by d * size, size scaled by exp(d).
        w, h = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1]
        cx, cy = a[..., 0] + 0.5 * w + d[..., 0] * w, a[..., 1] + 0.5 * h + d[..., 1] * h
        nw, nh = w * d[..., 2].exp(), h * d[..., 3].exp()
        ref = torch.stack([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], -1)
        ref = torch.stack([ref[..., 0].clamp(0, 32), ref[..., 1].clamp(0, 32),
                           ref[..., 2].clamp(0, 32), ref[..., 3].clamp(0, 32)], -1)
        assert torch.allclose(seen['anchors2'][lvl], ref, atol=1e-4)
        assert not torch.allclose(seen['anchors2'][lvl], a)


def test_losses_finite_with_gradients():
    head = make_head().train()
    x = [f.requires_grad_() for f in feats()]
    losses = head.loss(x, samples())
    assert set(losses) == {'s0.loss_rpn_reg', 's1.loss_rpn_cls', 's1.loss_rpn_reg'}
    assert all(len(v) == len(STRIDES) for v in losses.values())
    total = sum(sum(v) for v in losses.values())
    assert torch.isfinite(total) and total > 0
    total.backward()
    for name in ('stages.0.rpn_conv.conv.weight', 'stages.0.rpn_reg.weight', 'stages.1.rpn_conv.conv.weight',
                 'stages.1.rpn_cls.weight', 'stages.1.rpn_reg.weight'):
        g = dict(head.named_parameters())[name].grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, name


def test_proposals_shape():
    head = make_head(train=False).eval()
    with torch.no_grad():
        results = head.predict(feats(), samples())
    assert len(results) == 2
    for r in results:
        k = r.bboxes.size(0)
        assert 0 < k <= 10 and r.bboxes.shape == (k, 4) and r.scores.shape == (k,)
        assert (r.scores[:-1] >= r.scores[1:]).all()
        assert (r.bboxes >= 0).all() and (r.bboxes <= 32).all()
    # loss_and_predict gives losses and proposals with the proposal cfg.
    head = make_head().train()
    losses, preds = head.loss_and_predict(feats(), samples(),
                                          proposal_cfg=dict(nms_pre=20, max_per_img=5, nms=dict(iou_threshold=0.8)))
    assert len(preds) == 2 and all(p.bboxes.size(0) <= 5 for p in preds)


def test_forward_gives_last_stage_maps_and_bad_configs_fail_clearly():
    import pytest
    head = make_head(train=False).eval()
    with torch.no_grad():
        cls_scores, bbox_preds = head(feats())
    assert [tuple(c.shape) for c in cls_scores] == [(2, 1, 8, 8), (2, 1, 4, 4)]
    assert [tuple(b.shape) for b in bbox_preds] == [(2, 4, 8, 8), (2, 4, 4, 4)]
    with pytest.raises(ValueError, match='num_stages'):
        CascadeRPNHead(num_classes=1, num_stages=3, stages=[], test_cfg={})
    with pytest.raises(ValueError, match='one per stage'):
        CascadeRPNHead(num_classes=1, num_stages=0, stages=[], train_cfg=dict(assigner=None), test_cfg={})


def test_stage1_loss_is_iou_loss_over_region_positives_per_anchors_over_200():
    from torchvision.ops import box_iou
    head = make_head().train()
    stage = head.stages[0]
    x, smp = feats(), samples()
    metas, gts = [s.metainfo for s in smp], [s.gt_instances for s in smp]
    anchors, flags = stage.get_anchors([f.shape[-2:] for f in x], metas)
    _, _, preds = stage.stage_forward(x, anchors)
    losses = stage.stage_loss(anchors, flags, None, preds, gts, metas)
    # By hand: positives from the region assigner, 1 - IoU(decoded box, gt) summed, divided by
    # (all anchors of the batch) / 200 (no sampler: MMDetection's normaliser), times loss_weight 7.
    sizes = [a.size(1) for a in anchors]
    total, n_all = 0.0, sum(sizes) * len(smp)
    for i in range(len(smp)):
        flat = torch.cat([a[i] for a in anchors])
        res = stage.assigner.assign(InstanceData(priors=flat, valid_flags=torch.cat([f[i] for f in flags])), gts[i],
                                    metas[i], [tuple(p.shape[-2:]) for p in preds], sizes, 8, STRIDES,
                                    allowed_border=-1)
        pos = (res.gt_inds > 0).nonzero().squeeze(1)
        assert pos.numel() > 0
        deltas = torch.cat([p[i].permute(1, 2, 0).reshape(-1, 4) for p in preds])[pos].detach()
        boxes = stage.bbox_coder.decode(flat[pos], deltas)
        ious = box_iou(boxes, gts[i].bboxes)[torch.arange(pos.numel()), res.gt_inds[pos] - 1]
        total += float((1 - ious).sum())
    expected = 7.0 * total / (n_all / 200.0)
    assert abs(float(sum(losses['loss_rpn_reg']).detach()) - expected) < 1e-4 * max(1.0, expected)
