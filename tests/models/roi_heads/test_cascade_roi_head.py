"""CascadeRoIHead: one stage is StandardRoIHead; three stages refine boxes and pick positives as
worked out by hand; stage weights, no gradient through the refinement, the test-time ensemble."""
import copy
import math

import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.roi_heads import CascadeRoIHead, StandardRoIHead
from rcnn_plugins.structures import DetDataSample

EXTRACTOR = dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                 out_channels=4, featmap_strides=[4, 8, 16, 32])
RCNN_TEST = dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)


def head_cfg(stds=(0.1, 0.1, 0.2, 0.2), agnostic=False, num_classes=3):
    return dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=16, roi_feat_size=7,
                num_classes=num_classes, reg_class_agnostic=agnostic,
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4, target_stds=list(stds)),
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))


def train_cfg(thr, num=512, pos_fraction=0.25):
    return dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=thr, neg_iou_thr=thr, min_pos_iou=thr,
                              match_low_quality=False, ignore_iof_thr=-1),
                sampler=dict(type='RandomSampler', num=num, pos_fraction=pos_fraction, neg_pos_ub=-1,
                             add_gt_as_proposals=True),
                pos_weight=-1)


def sample(gt_boxes, gt_labels, shape=(128, 128)):
    s = DetDataSample(metainfo=dict(img_shape=shape, scale_factor=(1.0, 1.0), ori_shape=shape))
    s.gt_instances = InstanceData(bboxes=torch.tensor(gt_boxes, dtype=torch.float32),
                                  labels=torch.tensor(gt_labels, dtype=torch.long))
    return s


def feats(b=2, size=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, 4, size // s, size // s, generator=g) for s in (4, 8, 16, 32, 64))


def test_one_stage_equals_standard_roi_head():
    torch.manual_seed(0)
    standard = StandardRoIHead(EXTRACTOR, head_cfg(), train_cfg=train_cfg(0.5, num=32), test_cfg=RCNN_TEST)
    cascade = CascadeRoIHead(1, [1.0], EXTRACTOR, head_cfg(), train_cfg=[train_cfg(0.5, num=32)],
                             test_cfg=RCNN_TEST)
    # Same weights under MMDetection's keys: bbox_head.* -> bbox_head.0.*
    with torch.no_grad():  # non-trivial predictions
        for p in standard.parameters():
            p.normal_(0, 0.3)
    cascade.load_state_dict({k.replace('bbox_head.', 'bbox_head.0.'): v for k, v in standard.state_dict().items()})
    x = feats()
    samples = [sample([[10, 10, 60, 70], [70, 20, 120, 100]], [0, 2]), sample([[30, 30, 90, 90]], [1])]
    g = torch.Generator().manual_seed(1)
    props = []
    for n in (40, 30):
        xy = torch.rand(n, 2, generator=g) * 90
        props.append(InstanceData(bboxes=torch.cat([xy, xy + 10 + torch.rand(n, 2, generator=g) * 60], 1)))

    torch.manual_seed(5)
    ref = standard.loss(x, copy.deepcopy(props), samples)
    torch.manual_seed(5)
    out = cascade.loss(x, copy.deepcopy(props), samples)
    assert set(out) == {'s0.loss_cls', 's0.loss_bbox', 's0.acc'}
    for k in ('loss_cls', 'loss_bbox', 'acc'):
        assert torch.allclose(out[f's0.{k}'], ref[k], atol=1e-6), k
    assert ref['loss_bbox'] > 0

    det_ref = standard.predict(x, props, samples)
    det = cascade.predict(x, props, samples)
    for a, b in zip(det, det_ref):
        assert len(b) > 0
        assert torch.allclose(a.bboxes, b.bboxes) and torch.allclose(a.scores, b.scores)
        assert torch.equal(a.labels, b.labels)


def constant_head(head, cls_bias, reg_bias):
    """Make a head's outputs independent of its input: zero weights, the given biases."""
    with torch.no_grad():
        for p in head.parameters():
            p.zero_()
        head.fc_cls.bias.copy_(torch.tensor(cls_bias))
        head.fc_reg.bias.copy_(torch.tensor(reg_bias))


def three_stage_head(num=512):
    stds = (1., 1., 1., 1.)  # raw deltas: a dx of -0.1 moves a 100 px wide box 10 px left
    head = CascadeRoIHead(3, [1.0, 0.5, 0.25], EXTRACTOR,
                          [head_cfg(stds, agnostic=True, num_classes=2) for _ in range(3)],
                          train_cfg=[train_cfg(t, num=num, pos_fraction=1.0) for t in (0.5, 0.6, 0.7)],
                          test_cfg=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.99), max_per_img=100))
    for t, cls_bias in enumerate(([2., 0., 0.], [0., 1., 0.], [1., 1., 1.])):
        constant_head(head.bbox_head[t], cls_bias, [-0.1, 0., 0., 0.])
    return head


def test_three_stages_refined_boxes_and_positives_by_hand():
    # gt [0, 0, 100, 100]; proposals [x, 0, x + 100, 100] overlap it with IoU (100 - x) / (100 + x):
    # x = 50: .333, 40: .429, 30: .538, 20: .667, 10: .818, 0: 1.
    # Every stage shifts every RoI 10 px left (dx = -0.1, class-agnostic), the gt rows are dropped.
    #   stage 0 (thr .5) on {20, 30, 40, 50} + gt: positives gt, 20, 30; refined -> {10, 20, 30, 40}
    #   stage 1 (thr .6) on {10, 20, 30, 40} + gt: positives gt, 10, 20; refined -> {0, 10, 20, 30}
    #   stage 2 (thr .7) on {0, 10, 20, 30} + gt:  positives gt, 0, 10
    head = three_stage_head()
    seen = []
    for t, sampler in enumerate(head.bbox_sampler):
        def record(*args, _orig=sampler.sample, **kwargs):
            res = _orig(*args, **kwargs)
            seen.append(res)
            return res
        sampler.sample = record
    x = feats(b=1, size=256)
    props = [InstanceData(bboxes=torch.tensor([[x0, 0., x0 + 100, 100.] for x0 in (20, 30, 40, 50)]))]
    losses = head.loss(x, props, [sample([[0, 0, 100, 100]], [1], shape=(200, 200))])
    assert len(seen) == 3

    def starts(boxes):
        return sorted(round(v) for v in boxes[:, 0].tolist())

    expected_pos = [[0, 20, 30], [0, 10, 20], [0, 0, 10]]
    expected_neg = [[40, 50], [30, 40], [20, 30]]
    for t, res in enumerate(seen):
        assert starts(res.pos_priors) == expected_pos[t], t
        assert starts(res.neg_priors) == expected_neg[t], t
        assert res.pos_is_gt.sum() == 1  # the gt box, added again at every stage
        assert not res.priors.requires_grad
    # Refined widths and heights stay 100 x 100 (only dx is non-zero).
    for res in seen:
        assert torch.allclose(res.priors[:, 2:] - res.priors[:, :2], torch.full((5, 2), 100.))
    assert set(losses) == {f's{t}.{k}' for t in range(3) for k in ('loss_cls', 'loss_bbox', 'acc')}


def test_three_stages_refine_clips_to_the_image():
    # A negative whose shift would leave the image is clipped at x = 0 (img_shape), as decode does.
    head = three_stage_head()
    for t in range(3):
        constant_head(head.bbox_head[t], [0., 0., 0.], [-0.3, 0., 0., 0.])
    seen = []
    orig = head.bbox_sampler[1].sample
    head.bbox_sampler[1].sample = lambda *a, **k: seen.append(orig(*a, **k)) or seen[-1]
    props = [InstanceData(bboxes=torch.tensor([[10., 0., 110., 100.]]))]
    head.loss(feats(b=1, size=256), props, [sample([[100, 100, 150, 150]], [0], shape=(200, 200))])
    # [10, 0, 110, 100] shifted 30 px left is [-20, 0, 80, 100] -> clipped [0, 0, 80, 100].
    assert seen[0].neg_priors.tolist() == [[0., 0., 80., 100.]]


def test_stage_loss_weights_scale_losses_not_accuracy():
    x = feats(b=1, size=256)
    props = [InstanceData(bboxes=torch.tensor([[x0, 0., x0 + 100, 100.] for x0 in (20, 30, 40, 50)]))]
    samples = [sample([[0, 0, 100, 100]], [1], shape=(200, 200))]
    torch.manual_seed(0)
    weighted = three_stage_head().loss(x, props, samples)
    head = three_stage_head()
    head.stage_loss_weights = [1.0, 1.0, 1.0]
    torch.manual_seed(0)
    plain = head.loss(x, props, samples)
    for t, w in enumerate((1.0, 0.5, 0.25)):
        for k in ('loss_cls', 'loss_bbox'):
            assert torch.allclose(weighted[f's{t}.{k}'], w * plain[f's{t}.{k}']), (t, k)
        assert torch.equal(weighted[f's{t}.acc'], plain[f's{t}.acc'])
    assert plain['s1.loss_cls'] > 0


def test_no_gradient_through_the_refinement():
    # Stage 1's loss must not reach stage 0's parameters: the refined boxes are constants.
    head = CascadeRoIHead(2, [1.0, 1.0], EXTRACTOR, [head_cfg(agnostic=True), head_cfg(agnostic=True)],
                          train_cfg=[train_cfg(0.5, num=16), train_cfg(0.6, num=16)])
    torch.manual_seed(0)
    props = [InstanceData(bboxes=torch.tensor([[5., 5., 60., 70.], [60., 20., 120., 110.], [0., 0., 40., 40.]]))]
    losses = head.loss(feats(b=1), props, [sample([[10, 10, 60, 70], [70, 20, 120, 100]], [0, 2])])
    (losses['s1.loss_cls'] + losses['s1.loss_bbox']).backward()
    assert all(p.grad is None for p in head.bbox_head[0].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.bbox_head[1].parameters())


def test_predict_refines_twice_and_averages_stage_logits():
    head = three_stage_head()
    x = feats(b=1, size=256)
    props = [InstanceData(bboxes=torch.tensor([[40., 10., 140., 110.]]))]
    det = head.predict(x, props, [sample([[0, 0, 1, 1]], [0], shape=(200, 200))])[0]
    # Stages 0 and 1 move the RoI 20 px left; the last stage's regression moves the box 10 px more.
    # Scores: softmax of the mean of the stages' logits [2,0,0], [0,1,0], [1,1,1] = [1, 2/3, 1/3].
    mean = torch.tensor([1., 2 / 3, 1 / 3])
    probs = torch.softmax(mean, 0)
    order = sorted(range(2), key=lambda c: -probs[c])
    assert det.labels.tolist() == order
    assert torch.allclose(det.scores, probs[order])
    assert torch.allclose(det.bboxes, torch.tensor([[10., 10., 110., 110.]] * 2))
    assert math.isclose(float(probs.sum()), 1.0, rel_tol=1e-6)


def test_bad_configs_fail_clearly():
    with pytest.raises(ValueError, match='stage_loss_weights'):
        CascadeRoIHead(3, [1, 0.5], EXTRACTOR, head_cfg())
    with pytest.raises(ValueError, match='bbox_head has 2 entries'):
        CascadeRoIHead(3, [1, 0.5, 0.25], EXTRACTOR, [head_cfg(), head_cfg()])
    with pytest.raises(ValueError, match='list of 3 per-stage'):
        CascadeRoIHead(3, [1, 0.5, 0.25], EXTRACTOR, head_cfg(), train_cfg=train_cfg(0.5))
    with pytest.raises(ValueError, match='shared_head'):
        CascadeRoIHead(1, [1], EXTRACTOR, head_cfg(), shared_head=dict(type='ResLayer', depth=50))


def test_init_weights_reaches_every_stage_head():
    # MMDetection's init of each stage: fc_cls Normal(std 0.01), fc_reg Normal(std 0.001), zero biases.
    torch.manual_seed(0)
    head = CascadeRoIHead(3, [1, 0.5, 0.25], EXTRACTOR, [head_cfg(agnostic=True) for _ in range(3)])
    for h in head.bbox_head:
        torch.nn.init.constant_(h.fc_cls.weight, 1.0)
    head.init_weights()
    for h in head.bbox_head:
        assert 0.005 < float(h.fc_cls.weight.std()) < 0.02
        assert float(h.fc_reg.weight.std()) < 0.003 and float(h.fc_cls.bias.abs().max()) == 0.0
