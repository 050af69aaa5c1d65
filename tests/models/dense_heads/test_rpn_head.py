"""RPNHead: layer shapes, loss on hand-made cases (known positives / ignores / negatives), and
proposal post-processing (top-k per level, per-level NMS, min size, clipping, rescale)."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from rcnn_plugins.models.dense_heads import RPNHead
from rcnn_plugins.structures import DetDataSample

TRAIN_CFG = dict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                  match_low_quality=True, ignore_iof_thr=-1),
    sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False),
    allowed_border=-1, pos_weight=-1, debug=False)
TEST_CFG = dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0)


def make_head(strides=(16,), train_cfg=TRAIN_CFG, test_cfg=TEST_CFG, in_channels=4):
    # One ratio and scale 2: anchors are 2*stride squares centred on the grid points (x*s, y*s).
    return RPNHead(in_channels=in_channels, feat_channels=4,
                   anchor_generator=dict(type='AnchorGenerator', scales=[2], ratios=[1.0], strides=list(strides)),
                   bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4, target_stds=[1.0] * 4),
                   loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                   loss_bbox=dict(type='L1Loss', loss_weight=1.0),
                   train_cfg=train_cfg, test_cfg=test_cfg)


def sample(img_shape, bboxes, labels=None, scale_factor=(1.0, 1.0)):
    s = DetDataSample(metainfo=dict(img_shape=img_shape, pad_shape=img_shape, ori_shape=img_shape,
                                    scale_factor=scale_factor))
    bboxes = torch.tensor(bboxes, dtype=torch.float32).reshape(-1, 4)
    labels = torch.zeros(len(bboxes), dtype=torch.long) if labels is None else torch.tensor(labels)
    s.gt_instances = InstanceData(bboxes=bboxes, labels=labels)
    return s


def test_layers_and_forward_shapes():
    head = RPNHead(in_channels=256, feat_channels=256,
                   anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                                         strides=[4, 8, 16, 32, 64]))
    sd = head.state_dict()
    assert sd['rpn_conv.weight'].shape == (256, 256, 3, 3)
    assert sd['rpn_cls.weight'].shape == (3, 256, 1, 1)
    assert sd['rpn_reg.weight'].shape == (12, 256, 1, 1)
    assert len(sd) == 6
    feats = [torch.randn(2, 256, 32 // 2 ** i, 40 // 2 ** i) for i in range(5)]
    cls, reg = head(feats)
    assert [tuple(c.shape) for c in cls] == [(2, 3, 32 // 2 ** i, 40 // 2 ** i) for i in range(5)]
    assert [tuple(r.shape) for r in reg] == [(2, 12, 32 // 2 ** i, 40 // 2 ** i) for i in range(5)]
    with pytest.raises(ValueError, match='feature levels'):
        head(feats[:4])


def test_num_classes_must_be_one():
    with pytest.raises(ValueError, match='num_classes must be 1'):
        RPNHead(in_channels=4, num_classes=3)


def _constant_outputs(head, feats_hw, num_imgs, cls_bias, reg_bias):
    """Head outputs with constant logits / deltas, built as the convs would give them."""
    a = head.num_base_priors
    cls = [torch.full((num_imgs, a, h, w), cls_bias, requires_grad=True) for h, w in feats_hw]
    reg = [torch.tensor(reg_bias).view(1, 4, 1, 1).repeat(num_imgs, a, h, w).requires_grad_() for h, w in feats_hw]
    return cls, reg


def _bce(x, t):
    return -(t * math.log(1 / (1 + math.exp(-x))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-x))))


def test_loss_hand_case_one_positive():
    """128x128 image, 8x8 grid of 32x32 anchors (stride 16), gt [18, 14, 50, 46].

    Anchor (2, 2) = [16, 16, 48, 48] has IoU 900/1148 = 0.78 -> the one positive. Its right and
    upper neighbours have IoU 540/1508 = 0.358 (between 0.3 and 0.7) -> ignored; every other anchor
    has IoU < 0.3 -> 61 negatives. With constant logit b and deltas d the loss is
    (BCE(b, 1) + 61 BCE(b, 0)) / 62 and sum|d - t| / 62, t = encode(anchor, gt) by hand.
    """
    head = make_head()
    b, d = 0.3, [0.1, -0.2, 0.05, 0.4]
    cls, reg = _constant_outputs(head, [(8, 8)], 1, b, d)
    gt = [[18., 14., 50., 46.]]
    losses = head.loss_by_feat(cls, reg, [sample((128, 128), gt).gt_instances], [dict(img_shape=(128, 128),
                                                                                    pad_shape=(128, 128))])
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox'}
    expected_cls = (_bce(b, 1) + 61 * _bce(b, 0)) / 62
    t = [(34 - 32) / 32, (30 - 32) / 32, math.log(32 / 32), math.log(32 / 32)]
    expected_bbox = sum(abs(di - ti) for di, ti in zip(d, t)) / 62
    assert sum(losses['loss_rpn_cls']).item() == pytest.approx(expected_cls, rel=1e-5)
    assert sum(losses['loss_rpn_bbox']).item() == pytest.approx(expected_bbox, rel=1e-5)
    # Gradients reach the head outputs.
    (sum(losses['loss_rpn_cls']) + sum(losses['loss_rpn_bbox'])).backward()
    assert cls[0].grad.abs().sum() > 0 and reg[0].grad.abs().sum() > 0


def test_loss_allowed_border_excludes_outside_anchors():
    """allowed_border=0 keeps anchors fully inside 128x128: grid 1..6 x 1..6 = 36; minus the positive and
    2 ignored -> 33 negatives, avg factor 34."""
    head = make_head(train_cfg=dict(TRAIN_CFG, allowed_border=0))
    b = -0.7
    cls, reg = _constant_outputs(head, [(8, 8)], 1, b, [0., 0., 0., 0.])
    losses = head.loss_by_feat(cls, reg, [sample((128, 128), [[18., 14., 50., 46.]]).gt_instances],
                               [dict(img_shape=(128, 128), pad_shape=(128, 128))])
    assert sum(losses['loss_rpn_cls']).item() == pytest.approx((_bce(b, 1) + 33 * _bce(b, 0)) / 34, rel=1e-5)
    assert sum(losses['loss_rpn_bbox']).item() == pytest.approx((1 / 16 + 1 / 16) / 34, rel=1e-5)


def test_loss_batch_with_empty_image():
    """Image 2 has no gt: all its 64 anchors are negatives; its avg factor counts num_pos as 1
    (MMDetection's SamplingResult convention) -> 62 + 65 = 127."""
    head = make_head()
    b = 0.2
    cls, reg = _constant_outputs(head, [(8, 8)], 2, b, [0., 0., 0., 0.])
    gts = [sample((128, 128), [[18., 14., 50., 46.]], labels=[0]).gt_instances,
           sample((128, 128), []).gt_instances]
    metas = [dict(img_shape=(128, 128), pad_shape=(128, 128))] * 2
    losses = head.loss_by_feat(cls, reg, gts, metas)
    assert sum(losses['loss_rpn_cls']).item() == pytest.approx((_bce(b, 1) + 125 * _bce(b, 0)) / 127, rel=1e-5)
    assert all(torch.isfinite(v) for v in losses['loss_rpn_bbox'])


def test_loss_through_forward_and_data_samples():
    head = make_head(in_channels=8)
    x = (torch.randn(2, 8, 8, 8),)
    losses = head.loss(x, [sample((128, 128), [[18., 14., 50., 46.]]), sample((120, 100), [])])
    assert all(torch.isfinite(t) for v in losses.values() for t in v)
    with pytest.raises(ValueError, match='gt_instances'):
        head.loss(x, [DetDataSample(metainfo=dict(img_shape=(128, 128)))] * 2)


def test_proposals_per_level_nms():
    """Two levels (stride 16: 32 px anchors on an 8x8 grid; stride 32: 64 px anchors on 4x4).

    Three predictions decode to the same box [0, 0, 64, 64]: level 0 anchor (2,2) with dw=dh=log 2
    (logit 3), level 0 anchor (x=3, y=2) with dx=-0.5 too (logit 1) and level 1 anchor (1,1) with
    zero deltas (logit 2). NMS is per level: the level-0 duplicate is suppressed, the level-1 copy
    survives. All other logits are -10.
    """
    head = make_head(strides=(16, 32))
    cls0 = torch.full((1, 1, 8, 8), -10.)
    reg0 = torch.zeros(1, 4, 8, 8)
    cls1 = torch.full((1, 1, 4, 4), -10.)
    reg1 = torch.zeros(1, 4, 4, 4)
    cls0[0, 0, 2, 2] = 3.
    reg0[0, 2:, 2, 2] = math.log(2)
    cls0[0, 0, 2, 3] = 1.
    reg0[0, :, 2, 3] = torch.tensor([-0.5, 0., math.log(2), math.log(2)])
    cls1[0, 0, 1, 1] = 2.
    res = head.predict_by_feat([cls0, cls1], [reg0, reg1], [dict(img_shape=(128, 128))])[0]
    top = torch.sigmoid(torch.tensor([3., 2.]))
    assert torch.allclose(res.scores[:2], top)
    assert torch.allclose(res.bboxes[:2], torch.tensor([[0., 0., 64., 64.]] * 2), atol=1e-4)
    # The logit-1 duplicate is gone; everything else has score sigmoid(-10).
    assert not torch.isclose(res.scores, torch.sigmoid(torch.tensor(1.))).any()
    assert torch.allclose(res.scores[2:], torch.sigmoid(torch.tensor(-10.)))
    assert (res.labels == 0).all() and res.labels.dtype == torch.long
    # No other pair overlaps by more than 0.7 (grid neighbours: 1/3, clipped border boxes: 1/2),
    # so exactly one of the 64 + 16 candidates is suppressed.
    assert len(res) == 64 + 16 - 1


def test_proposals_sorted_capped_clipped_and_batched():
    torch.manual_seed(0)
    head = make_head(strides=(16, 32), test_cfg=dict(nms_pre=20, max_per_img=15,
                                                   nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0))
    cls = [torch.randn(2, 1, 8, 8), torch.randn(2, 1, 4, 4)]
    reg = [torch.randn(2, 4, 8, 8) * 0.5, torch.randn(2, 4, 4, 4) * 0.5]
    metas = [dict(img_shape=(128, 128)), dict(img_shape=(100, 60))]
    results = head.predict_by_feat(cls, reg, metas)
    for res, meta in zip(results, metas):
        assert 0 < len(res) <= 15
        assert (res.scores[:-1] >= res.scores[1:]).all()
        h, w = meta['img_shape']
        assert (res.bboxes >= 0).all() and (res.bboxes[:, 0::2] <= w).all() and (res.bboxes[:, 1::2] <= h).all()
    # Batch processing equals image-by-image processing.
    for i in range(2):
        single = head.predict_by_feat([c[i:i + 1] for c in cls], [r[i:i + 1] for r in reg], metas[i:i + 1])[0]
        assert torch.allclose(single.bboxes, results[i].bboxes) and torch.allclose(single.scores, results[i].scores)


def test_proposals_nms_pre_min_size_and_rescale():
    head = make_head(strides=(16,), test_cfg=dict(nms_pre=3, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7),
                                                  min_bbox_size=40))
    cls = torch.full((1, 1, 8, 8), -5.)
    reg = torch.zeros(1, 4, 8, 8)
    # Four well-separated confident anchors; nms_pre=3 keeps only the best three.
    for k, (y, x) in enumerate([(1, 1), (1, 5), (5, 1), (5, 5)]):
        cls[0, 0, y, x] = 4. - k
        reg[0, 2:, y, x] = math.log(2)  # 64 px boxes, larger than min_bbox_size
    cls[0, 0, 3, 3] = 10.  # best score but a 32 px box: dropped by min_bbox_size=40
    res = head.predict_by_feat([cls], [reg], [dict(img_shape=(128, 128), scale_factor=(0.5, 0.25))])[0]
    assert torch.allclose(res.scores, torch.sigmoid(torch.tensor([4., 3.])))
    res_scaled = head.predict_by_feat([cls], [reg], [dict(img_shape=(128, 128), scale_factor=(0.5, 0.25))],
                                      rescale=True)[0]
    # As MMDetection, rescaling comes before the size filter: min_bbox_size is in original pixels,
    # where the 32 px box is 64 x 128 and survives.
    assert torch.allclose(res_scaled.scores, torch.sigmoid(torch.tensor([10., 4., 3.])))
    scale = torch.tensor([0.5, 0.25, 0.5, 0.25])
    assert torch.allclose(res_scaled.bboxes[0], torch.tensor([32., 32., 64., 64.]) / scale)
    assert torch.allclose(res_scaled.bboxes[1:], res.bboxes / torch.tensor([0.5, 0.25, 0.5, 0.25]))


def test_proposals_empty_when_everything_filtered():
    head = make_head(test_cfg=dict(nms_pre=10, max_per_img=5, nms=dict(type='nms', iou_threshold=0.7),
                                   min_bbox_size=1000))
    res = head.predict_by_feat([torch.randn(1, 1, 8, 8)], [torch.zeros(1, 4, 8, 8)], [dict(img_shape=(128, 128))])[0]
    assert res.bboxes.shape == (0, 4) and res.scores.shape == (0,) and res.labels.shape == (0,)


def test_softmax_objectness():
    head = RPNHead(in_channels=4, feat_channels=4,
                   anchor_generator=dict(type='AnchorGenerator', scales=[2], ratios=[1.0], strides=[16]),
                   loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                   train_cfg=TRAIN_CFG, test_cfg=TEST_CFG)
    assert head.rpn_cls.out_channels == 2
    x = (torch.randn(1, 4, 8, 8),)
    cls, reg = head(x)
    res = head.predict_by_feat(cls, reg, [dict(img_shape=(128, 128))])[0]
    logits = cls[0].permute(0, 2, 3, 1).reshape(-1, 2)
    best = F.softmax(logits, -1)[:, 0].max()
    assert torch.isclose(res.scores[0], best)
    losses = head.loss(x, [sample((128, 128), [[18., 14., 50., 46.]])])
    assert all(torch.isfinite(v) for v in losses['loss_rpn_cls'])


# ---------------------------------------------------------------- MMDetection parity
def test_loss_is_one_value_per_level_and_forward_takes_any_iterable():
    """As MMDetection: ``loss_rpn_cls`` / ``loss_rpn_bbox`` are lists with one scalar per level, each
    averaged over the sampled anchors of the whole batch, so they sum to the single-level total.

    Level 0 (stride 16, 8x8 grid of 32 px anchors) holds the case of
    ``test_loss_hand_case_one_positive`` (1 positive, 2 ignored, 61 negatives); level 1 (stride 32,
    4x4 grid of 64 px anchors) adds anchors: [0, 0, 64, 64] at (1, 1) contains the gt, IoU 1024/4096 = 0.25
    with the gt -> negative like every other level-1 anchor (max IoU 0.25 < 0.3), and no level-1
    anchor beats level 0's 0.78, so 16 more negatives: avg factor 1 + 61 + 16 = 78.
    """
    head = make_head(strides=(16, 32))
    b = 0.3
    cls, reg = _constant_outputs(head, [(8, 8), (4, 4)], 1, b, [0., 0., 0., 0.])
    gt = [sample((128, 128), [[18., 14., 50., 46.]]).gt_instances]
    losses = head.loss_by_feat(cls, reg, gt, [dict(img_shape=(128, 128), pad_shape=(128, 128))])
    assert isinstance(losses['loss_rpn_cls'], list) and len(losses['loss_rpn_cls']) == 2
    assert isinstance(losses['loss_rpn_bbox'], list) and len(losses['loss_rpn_bbox']) == 2
    cls0, cls1 = (v.item() for v in losses['loss_rpn_cls'])
    assert cls0 == pytest.approx((_bce(b, 1) + 61 * _bce(b, 0)) / 78, rel=1e-5)
    assert cls1 == pytest.approx(16 * _bce(b, 0) / 78, rel=1e-5)
    t = [(34 - 32) / 32, (30 - 32) / 32, 0., 0.]
    assert losses['loss_rpn_bbox'][0].item() == pytest.approx(sum(abs(v) for v in t) / 78, rel=1e-5)
    assert losses['loss_rpn_bbox'][1].item() == 0.
    # mmengine's parse_losses sums the lists (and logs the sums).
    from mmengine.model import BaseModel
    total, log_vars = BaseModel.parse_losses(None, losses)
    assert log_vars['loss_rpn_cls'].item() == pytest.approx(cls0 + cls1, rel=1e-5)
    assert total.item() == pytest.approx(cls0 + cls1 + sum(abs(v) for v in t) / 78, rel=1e-5)

    # forward iterates its input: a generator of feature maps works like a tuple.
    x = [torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)]
    from_tuple = head(tuple(x))
    from_generator = head(f for f in x)
    assert all(torch.equal(a, b) for a, b in zip(from_tuple[0] + from_tuple[1], from_generator[0] + from_generator[1]))


def test_loss_raises_when_no_anchor_inside_image():
    """allowed_border=0 and a 20x24 image: the smallest anchor is 32 px wide, none fits -> a ValueError
    naming the image and its size (MMDetection raises too) instead of silent zero losses."""
    head = make_head(train_cfg=dict(TRAIN_CFG, allowed_border=0))
    cls, reg = _constant_outputs(head, [(2, 2)], 1, 0., [0., 0., 0., 0.])
    meta = dict(img_shape=(20, 24), pad_shape=(32, 32), img_path='data/tiny.jpg')
    with pytest.raises(ValueError, match=r'no anchor lies inside image data/tiny.jpg of size 20x24.*allowed_border=-1'):
        head.loss_by_feat(cls, reg, [sample((20, 24), [[2., 2., 10., 10.]]).gt_instances], [meta])
    # allowed_border=-1 uses every anchor of the padded image: finite losses.
    head = make_head()
    losses = head.loss_by_feat(cls, reg, [sample((20, 24), [[2., 2., 10., 10.]]).gt_instances], [meta])
    assert all(torch.isfinite(t) for v in losses.values() for t in v)
