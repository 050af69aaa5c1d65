"""GARPNHead / GuidedAnchorHead: location targets against a loop of MMDetection's sequential
writes, shape targets on a hand case where only the approxs make a location positive, losses with
gradients, and the location filter of the proposals."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.dense_heads import GARPNHead
from rcnn_plugins.structures import DetDataSample

TRAIN_CFG = dict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3),
    sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5, add_gt_as_proposals=False),
    ga_assigner=dict(type='ApproxMaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3),
    ga_sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5, add_gt_as_proposals=False),
    allowed_border=-1, center_ratio=0.2, ignore_ratio=0.5)
TEST_CFG = dict(nms_pre=50, nms_post=20, max_per_img=10, nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0)


def make_head(**kwargs):
    cfg = dict(in_channels=8, feat_channels=8, deform_groups=2, train_cfg=TRAIN_CFG, test_cfg=TEST_CFG,
               approx_anchor_generator=dict(type='AnchorGenerator', octave_base_scale=8, scales_per_octave=3,
                                            ratios=[0.5, 1.0, 2.0], strides=[4, 8]),
               square_anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], scales=[8], strides=[4, 8]))
    cfg.update(kwargs)
    return GARPNHead(**cfg)


def reference_loc_targets(gts, sizes, strides, scale=8, center_ratio=0.2, ignore_ratio=0.5):
    """MMDetection's ga_loc_targets for one image, written as its per-gt sequential writes."""
    r1, r2 = (1 - center_ratio) / 2, (1 - ignore_ratio) / 2
    targets = [torch.zeros(h, w) for h, w in sizes]
    weights = [torch.full((h, w), -1.) for h, w in sizes]
    ignore = [torch.zeros(h, w) for h, w in sizes]

    def region(box, r, size):
        x1, y1 = round(float((1 - r) * box[0] + r * box[2])), round(float((1 - r) * box[1] + r * box[3]))
        x2, y2 = round(float(r * box[0] + (1 - r) * box[2])), round(float(r * box[1] + (1 - r) * box[3]))
        h, w = size
        return min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h)

    for box in gts:
        s = math.sqrt((box[2] - box[0]) * (box[3] - box[1]))
        lvl = min(max(math.floor(math.log2(s) - math.log2(scale * strides[0]) + 0.5), 0), len(sizes) - 1)
        g = [c / strides[lvl] for c in box]
        ix1, iy1, ix2, iy2 = region(g, r2, sizes[lvl])
        cx1, cy1, cx2, cy2 = region(g, r1, sizes[lvl])
        targets[lvl][cy1:cy2 + 1, cx1:cx2 + 1] = 1
        weights[lvl][iy1:iy2 + 1, ix1:ix2 + 1] = 0
        weights[lvl][cy1:cy2 + 1, cx1:cx2 + 1] = 1
        for adj in (lvl - 1, lvl + 1):
            if 0 <= adj < len(sizes):
                a = [c / strides[adj] for c in box]
                x1, y1, x2, y2 = region(a, r2, sizes[adj])
                ignore[adj][y1:y2 + 1, x1:x2 + 1] = 1
    for w, ign in zip(weights, ignore):
        w[(w < 0) & (ign > 0)] = 0
        w[w < 0] = 0.1
    return targets, weights


def test_loc_targets_by_hand():
    head = make_head()
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 32., 32.]]), labels=torch.tensor([0]))
    targets, weights, avg = head.ga_loc_targets([gt], [(8, 8), (4, 4)])
    # Size 32 = 8 * stride 4: level 0, where the box spans cells 0-8. Centre region (r = 0.4):
    # round(3.2)..round(4.8) = cells 3-5; ignore region (r = 0.25): cells 2-6.
    expected = torch.zeros(8, 8)
    expected[3:6, 3:6] = 1
    assert torch.equal(targets[0][0, 0], expected)
    w = torch.full((8, 8), 0.1)
    w[2:7, 2:7] = 0
    w[3:6, 3:6] = 1
    assert torch.equal(weights[0][0, 0], w)
    # Level 1 (stride 8, box cells 0-4): its ignore region, cells 1-3, is ignored; nothing positive.
    w1 = torch.full((4, 4), 0.1)
    w1[1:4, 1:4] = 0
    assert targets[1].sum() == 0 and torch.equal(weights[1][0, 0], w1)
    assert avg == pytest.approx((64 + 16) / 200)


@pytest.mark.parametrize('order', [[0, 1], [1, 0]])
def test_loc_targets_overlapping_gts_match_sequential_writes(order):
    # The second box's ignore region covers cell (5, 5) of the first's centre: the later gt wins.
    boxes = [[0., 0., 32., 32.], [12., 12., 44., 44.], [2., 30., 70., 64.], [20., 2., 28., 12.]]
    boxes = [boxes[i] for i in order] + boxes[2:]
    gt = InstanceData(bboxes=torch.tensor(boxes), labels=torch.zeros(4, dtype=torch.long))
    targets, weights, _ = make_head().ga_loc_targets([gt], [(16, 16), (8, 8)])
    ref_t, ref_w = reference_loc_targets(boxes, [(16, 16), (8, 8)], [4, 8])
    for lvl in range(2):
        assert torch.equal(targets[lvl][0, 0], ref_t[lvl])
        assert torch.equal(weights[lvl][0, 0], ref_w[lvl])


def test_shape_targets_come_from_the_approxs():
    # One location per 16 px, squares of 32 px; approxs of ratios 0.5 / 2 (45.25 x 22.63 and
    # 22.63 x 45.25). The gt is location 1's tall approx: IoU 1 there, while the square itself
    # reaches only 724 / 1324 = 0.55 < 0.7.
    head = make_head(
        approx_anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2, scales_per_octave=1,
                                     ratios=[0.5, 2.0], strides=[16]),
        square_anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], scales=[2], strides=[16]),
        train_cfg=dict(TRAIN_CFG, ga_sampler=None))
    approxs, inside = head.inside_flags([(1, 3)], [dict(img_shape=(48, 48), pad_shape=(48, 48))], 'cpu')
    squares = head.square_anchor_generator.grid_priors([(1, 3)])[0]
    tall = approxs.view(3, 2, 4)[1, 1]
    torch.testing.assert_close(tall, torch.tensor([16 - 16 / 2 ** .5, -32 / 2 ** .5, 16 + 16 / 2 ** .5, 32 / 2 ** .5]))
    gt = InstanceData(bboxes=tall[None].clone(), labels=torch.tensor([0]))
    anchors, gts, weights, _ = head._shape_targets_single(approxs, inside[0], squares, gt)
    assert weights[:, 0].tolist() == [0., 1., 0.]
    assert torch.equal(anchors[1], squares[1]) and torch.equal(gts[1], tall)


def samples(num=2):
    out = []
    for i in range(num):
        s = DetDataSample(metainfo=dict(img_shape=(32, 32), pad_shape=(32, 32), scale_factor=(1., 1.)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[2., 4., 30., 28.], [10., 10., 18., 20.]])[:2 - i],
                                      labels=torch.tensor([3, 5])[:2 - i])
        out.append(s)
    return out


def test_losses_are_finite_with_gradients():
    torch.manual_seed(0)
    head = make_head()
    head.init_weights()
    head.train()
    feats = [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4)]
    losses, proposals = head.loss_and_predict(feats, samples())
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_anchor_shape', 'loss_anchor_loc'}
    assert all(len(v) == 2 and all(torch.isfinite(x) for x in v) for v in losses.values())
    assert sum(losses['loss_anchor_shape']) > 0 and sum(losses['loss_anchor_loc']) > 0
    sum(sum(v) for v in losses.values()).backward()
    params = dict(head.named_parameters())
    for name in ('rpn_conv.weight', 'conv_loc.weight', 'conv_shape.weight', 'conv_cls.weight', 'conv_reg.weight',
                 'feature_adaption.conv_adaption.weight'):
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name
    assert len(proposals) == 2 and all(len(p) <= TEST_CFG['max_per_img'] for p in proposals)


def test_location_filter_of_the_proposals():
    torch.manual_seed(0)
    head = make_head()
    head.eval()
    feats = [torch.randn(1, 8, 8, 8), torch.randn(1, 8, 4, 4)]
    with torch.no_grad():
        head.conv_loc.bias.fill_(-20.)        # sigmoid ~ 0 < loc_filter_thr everywhere: nothing proposed
        assert len(head.predict(feats, samples(1))[0]) == 0
        head.conv_loc.bias.fill_(20.)         # every location kept
        res = head.predict(feats, samples(1))[0]
    assert 0 < len(res) <= TEST_CFG['max_per_img'] and (res.labels == 0).all()
    assert (res.scores[:-1] >= res.scores[1:]).all()
    assert (res.bboxes >= 0).all() and (res.bboxes <= 32).all()


def test_samplers_that_add_gts_are_refused():
    for key in ('sampler', 'ga_sampler'):
        cfg = dict(TRAIN_CFG)
        cfg[key] = dict(type='RandomSampler', num=64, pos_fraction=0.5)  # add_gt_as_proposals defaults to True
        with pytest.raises(ValueError, match=f'{key}: add_gt_as_proposals=True'):
            make_head(train_cfg=cfg)
