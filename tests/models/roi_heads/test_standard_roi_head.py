"""RoI head parts: level mapping and pooling of SingleRoIExtractor, BBoxHead targets / loss /
post-processing on hand cases, ConvFCBBoxHead layouts, StandardRoIHead loss and predict."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torchvision.ops import roi_align

from rcnn_plugins.models.roi_heads import ConvFCBBoxHead, Shared2FCBBoxHead, SingleRoIExtractor, StandardRoIHead
from rcnn_plugins.structures import DetDataSample

BBOX_CODER = dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4, target_stds=[0.1, 0.1, 0.2, 0.2])
RCNN_TRAIN = dict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                  match_low_quality=False, ignore_iof_thr=-1),
    sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
    pos_weight=-1, debug=False)
RCNN_TEST = dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)


def extractor(roi_layer=None):
    return SingleRoIExtractor(roi_layer=roi_layer or dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                              out_channels=4, featmap_strides=[4, 8, 16, 32])


def bbox_head(num_classes=3, **kw):
    kw = dict(dict(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False),
                   loss_bbox=dict(type='L1Loss', loss_weight=1.0)), **kw)
    return Shared2FCBBoxHead(in_channels=4, fc_out_channels=16, roi_feat_size=7, num_classes=num_classes,
                             bbox_coder=BBOX_CODER, **kw)


def encode_by_hand(p, g, stds=(0.1, 0.1, 0.2, 0.2)):
    pw, ph = p[2] - p[0], p[3] - p[1]
    gw, gh = g[2] - g[0], g[3] - g[1]
    d = [((g[0] + g[2]) / 2 - (p[0] + p[2]) / 2) / pw, ((g[1] + g[3]) / 2 - (p[1] + p[3]) / 2) / ph,
         math.log(gw / pw), math.log(gh / ph)]
    return [di / s for di, s in zip(d, stds)]


# ---------------------------------------------------------------- SingleRoIExtractor
def test_map_roi_levels_by_hand():
    # Square boxes of side s: level = floor(log2(s / 56 + 1e-6)) clamped to [0, 3]:
    # 20 -> -1.49 -> 0; 56 -> 0; 111 -> 0.987 -> 0; 112 -> 1; 224 -> 2; 448 -> 3; 1000 -> 4.16 -> 3.
    sides = [20, 56, 111, 112, 224, 448, 1000]
    rois = torch.tensor([[0, 10, 10, 10 + s, 10 + s] for s in sides], dtype=torch.float32)
    assert extractor().map_roi_levels(rois, 4).tolist() == [0, 0, 0, 1, 2, 3, 3]
    # Non-square: sqrt(56 * 224) = 112 -> level 1.
    assert extractor().map_roi_levels(torch.tensor([[0., 0, 0, 56, 224]]), 4).tolist() == [1]


def test_extractor_pools_from_the_mapped_level():
    torch.manual_seed(0)
    ext = extractor()
    feats = [torch.randn(2, 4, 128 // s, 128 // s) for s in (4, 8, 16, 32)] + [torch.randn(2, 4, 2, 2)]
    rois = torch.tensor([[0, 5, 5, 45, 45],      # 40 px  -> level 0 (stride 4)
                         [1, 0, 0, 120, 120],    # 120 px -> level 1 (stride 8)
                         [1, 10, 20, 60, 70],    # 50 px  -> level 0
                         [0, 0, 0, 127, 127]],   # 127 px -> level 1
                        dtype=torch.float32)
    out = ext(feats, rois)
    assert out.shape == (4, 4, 7, 7)
    for i, lvl in enumerate([0, 1, 0, 1]):
        ref = roi_align(feats[lvl], rois[i:i + 1], 7, spatial_scale=1 / (4 * 2 ** lvl), sampling_ratio=0, aligned=True)
        assert torch.allclose(out[i:i + 1], ref, atol=1e-6)
    # Levels that receive no RoI stay in the graph (gradient exists, equal to zero).
    feats = [f.requires_grad_() for f in feats]
    ext(feats, rois).sum().backward()
    assert feats[3].grad is not None and feats[3].grad.abs().sum() == 0
    assert feats[0].grad.abs().sum() > 0


def test_extractor_roipool_and_bad_input():
    ext = extractor(dict(type='RoIPool', output_size=7))
    feats = [torch.randn(1, 4, 32 // 2 ** i, 32 // 2 ** i) for i in range(4)]
    assert ext(feats, torch.tensor([[0., 0, 0, 30, 30]])).shape == (1, 4, 7, 7)
    with pytest.raises(ValueError, match='rois must be'):
        ext(feats, torch.zeros(3, 4))
    with pytest.raises(ValueError, match='output_size'):
        SingleRoIExtractor(roi_layer=dict(type='RoIAlign'), out_channels=4, featmap_strides=[4])


# ---------------------------------------------------------------- BBoxHead
def test_shared2fc_layout_and_forward():
    head = Shared2FCBBoxHead(in_channels=256, fc_out_channels=1024, roi_feat_size=7, num_classes=80,
                             bbox_coder=BBOX_CODER)
    sd = head.state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes == {'fc_cls.weight': (81, 1024), 'fc_cls.bias': (81,), 'fc_reg.weight': (320, 1024),
                      'fc_reg.bias': (320,), 'shared_fcs.0.weight': (1024, 12544), 'shared_fcs.0.bias': (1024,),
                      'shared_fcs.1.weight': (1024, 1024), 'shared_fcs.1.bias': (1024,)}
    head.init_weights()
    # MMDetection's init: fc_cls ~ N(0, 0.01), fc_reg ~ N(0, 0.001), shared fcs Xavier uniform, zero biases.
    assert head.fc_cls.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert head.fc_reg.weight.std().item() == pytest.approx(0.001, rel=0.1)
    bound = math.sqrt(6 / (12544 + 1024))
    assert head.shared_fcs[0].weight.abs().max().item() <= bound
    assert head.shared_fcs[0].weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert head.shared_fcs[0].bias.abs().sum() == 0 and head.fc_cls.bias.abs().sum() == 0
    cls, reg = head(torch.randn(5, 256, 7, 7))
    assert cls.shape == (5, 81) and reg.shape == (5, 320)


def test_convfc_variants():
    agn = bbox_head(reg_class_agnostic=True)
    assert agn.fc_reg.out_features == 4
    head = ConvFCBBoxHead(num_shared_convs=2, num_shared_fcs=0, num_cls_fcs=1, num_reg_convs=1, in_channels=4,
                          conv_out_channels=8, fc_out_channels=16, num_classes=2, bbox_coder=BBOX_CODER)
    # cls: 2 shared convs -> flatten (8*49) -> fc 16 -> fc_cls; reg: +1 conv -> flatten (8*49) -> fc_reg.
    assert head.cls_fcs[0].in_features == 8 * 49 and head.fc_cls.in_features == 16
    assert head.fc_reg.in_features == 8 * 49
    cls, reg = head(torch.randn(3, 4, 7, 7))
    assert cls.shape == (3, 3) and reg.shape == (3, 8)
    with pytest.raises(ValueError, match='branch convs'):
        ConvFCBBoxHead(num_shared_fcs=1, num_cls_convs=1, in_channels=4, num_classes=2)
    # A plain sigmoid CrossEntropyLoss (not a custom loss) keeps num_classes + 1 logits, as MMDetection.
    assert bbox_head(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True)).fc_cls.out_features == 4


def test_targets_hand_case():
    head = bbox_head(num_classes=3)
    p1, g1 = [10., 10., 50., 30.], [12., 8., 52., 36.]
    p2, g2 = [0., 0., 20., 20.], [2., 2., 18., 22.]
    res_a = SimpleNamespace(pos_priors=torch.tensor([p1]), neg_priors=torch.tensor([[60., 60., 90., 90.]] * 2),
                            pos_gt_bboxes=torch.tensor([g1]), pos_gt_labels=torch.tensor([2]))
    res_b = SimpleNamespace(pos_priors=torch.tensor([p2]), neg_priors=torch.zeros(0, 4),
                            pos_gt_bboxes=torch.tensor([g2]), pos_gt_labels=torch.tensor([0]))
    labels, lw, bt, bw = head.get_targets([res_a, res_b], RCNN_TRAIN)
    assert labels.tolist() == [2, 3, 3, 0]  # background = num_classes = 3
    assert lw.tolist() == [1, 1, 1, 1]
    assert torch.allclose(bt[0], torch.tensor(encode_by_hand(p1, g1)), atol=1e-5)
    assert torch.allclose(bt[3], torch.tensor(encode_by_hand(p2, g2)), atol=1e-5)
    assert bt[1:3].abs().sum() == 0
    assert bw.tolist() == [[1.] * 4, [0.] * 4, [0.] * 4, [1.] * 4]
    _, lw2, _, _ = head.get_targets([res_a], dict(RCNN_TRAIN, pos_weight=2.0))
    assert lw2.tolist() == [2, 1, 1]


def test_loss_hand_case():
    """4 RoIs (2 positives of classes 2 and 0, 2 negatives): loss_cls = mean CE, loss_bbox =
    sum |pred[gt class] - target| over positives / 4, acc in percent."""
    head = bbox_head(num_classes=3)
    torch.manual_seed(0)
    cls = torch.randn(4, 4)
    reg = torch.randn(4, 12)
    labels = torch.tensor([2, 3, 3, 0])
    targets = torch.randn(4, 4)
    bw = torch.tensor([[1.] * 4, [0.] * 4, [0.] * 4, [1.] * 4])
    targets = targets * bw
    losses = head.loss(cls, reg, None, labels, torch.ones(4), targets, bw)
    assert losses['loss_cls'].item() == pytest.approx(F.cross_entropy(cls, labels).item(), rel=1e-5)
    l1 = (reg[0, 8:12] - targets[0]).abs().sum() + (reg[3, 0:4] - targets[3]).abs().sum()
    assert losses['loss_bbox'].item() == pytest.approx(l1.item() / 4, rel=1e-5)
    acc = (cls.argmax(1) == labels).float().mean() * 100
    assert losses['acc'].reshape(-1)[0].item() == pytest.approx(acc.item())
    # Class-agnostic head reads the single delta vector.
    agn = bbox_head(num_classes=3, reg_class_agnostic=True)
    la = agn.loss(cls, reg[:, :4], None, labels, torch.ones(4), targets, bw)
    l1a = (reg[0, :4] - targets[0]).abs().sum() + (reg[3, :4] - targets[3]).abs().sum()
    assert la['loss_bbox'].item() == pytest.approx(l1a.item() / 4, rel=1e-5)


def test_predict_by_feat_decode_rescale_and_nms():
    """Two RoIs; RoI 0 is class 1 with high probability and delta 0 -> box = RoI; RoI 1 is background."""
    head = bbox_head(num_classes=2)
    rois = torch.tensor([[0., 10., 20., 50., 60.], [0., 5., 5., 15., 15.]])
    cls = torch.tensor([[-5., 5., -5.], [-5., -5., 5.]])
    reg = torch.zeros(2, 8)
    reg[0, 4:] = torch.tensor([0.5, 0., 0., 0.])  # class-1 deltas: shift x by 0.5 * 0.1 * 40 = 2 px
    meta = dict(img_shape=(100, 100), scale_factor=(2.0, 4.0))
    res = head.predict_by_feat((rois,), (cls,), (reg,), [meta], RCNN_TEST)[0]
    assert res.labels.tolist() == [1]
    assert torch.allclose(res.bboxes, torch.tensor([[12., 20., 52., 60.]]), atol=1e-4)
    assert res.scores[0].item() == pytest.approx(F.softmax(cls[0], 0)[1].item(), rel=1e-5)
    res2 = head.predict_by_feat((rois,), (cls,), (reg,), [meta], RCNN_TEST, rescale=True)[0]
    assert torch.allclose(res2.bboxes, torch.tensor([[6., 5., 26., 15.]]), atol=1e-4)
    # Clipped to the image: a big shift right stops at x = 100.
    reg[0, 4] = 20.  # 20 * 0.1 * 40 = 80 px: x2 = 130
    res3 = head.predict_by_feat((rois,), (cls,), (reg,), [meta], RCNN_TEST)[0]
    assert res3.bboxes[0, 2].item() == pytest.approx(100.)
    # Empty RoIs of an image -> empty detections.
    empty = head.predict_by_feat((torch.zeros(0, 5),), (torch.zeros(0, 3),), (torch.zeros(0, 8),), [meta],
                                 RCNN_TEST)[0]
    assert empty.bboxes.shape == (0, 4) and empty.scores.shape == (0,) and empty.labels.shape == (0,)


# ---------------------------------------------------------------- StandardRoIHead
def roi_head(num_classes=3, train=True):
    return StandardRoIHead(
        bbox_roi_extractor=dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                                out_channels=4, featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=16, roi_feat_size=7,
                       num_classes=num_classes, bbox_coder=BBOX_CODER,
                       loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                       loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=RCNN_TRAIN if train else None, test_cfg=RCNN_TEST)


def feats(b=2, size=64):
    return tuple(torch.randn(b, 4, size // 2 ** i, size // 2 ** i) for i in range(5))


def data_sample(img_shape, bboxes, labels):
    s = DetDataSample(metainfo=dict(img_shape=img_shape, ori_shape=img_shape, scale_factor=(1., 1.)))
    s.gt_instances = InstanceData(bboxes=torch.tensor(bboxes, dtype=torch.float32).reshape(-1, 4),
                                  labels=torch.tensor(labels, dtype=torch.long))
    return s


def test_standard_roi_head_loss_with_gt_as_proposals_and_empty_image():
    torch.manual_seed(0)
    head = roi_head()
    x = feats()
    samples = [data_sample((256, 256), [[10, 10, 100, 90], [120, 40, 200, 220]], [1, 2]),
               data_sample((256, 256), [], [])]
    proposals = [InstanceData(bboxes=torch.tensor([[12., 8., 98., 92.], [0., 0., 30., 30.]]), scores=torch.ones(2)),
                 InstanceData(bboxes=torch.tensor([[5., 5., 60., 60.]]), scores=torch.ones(1))]
    losses = head.loss(x, proposals, samples)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'acc'}
    assert all(torch.isfinite(v).all() for v in losses.values())
    # Proposals are not mutated (still have 'bboxes').
    assert 'bboxes' in proposals[0]
    losses['loss_cls'].backward()
    assert head.bbox_head.fc_cls.weight.grad.abs().sum() > 0


def test_standard_roi_head_targets_match_gt_when_gt_is_proposal():
    """With no RPN proposals the sampler's gt boxes are the only positives: the box targets are 0."""
    head = roi_head()
    sample = data_sample((256, 256), [[10, 10, 100, 90]], [1])
    pred = InstanceData(priors=torch.zeros(0, 4))
    assign = head.bbox_assigner.assign(pred, sample.gt_instances)
    res = head.bbox_sampler.sample(assign, pred, sample.gt_instances)
    labels, _, bt, bw = head.bbox_head.get_targets([res], RCNN_TRAIN)
    assert labels.tolist() == [1]
    assert torch.allclose(bt, torch.zeros(1, 4), atol=1e-6) and bw.sum() == 4


def test_standard_roi_head_predict_and_empty_proposals():
    head = roi_head(train=False)
    head.eval()
    x = feats()
    samples = [data_sample((64, 64), [], []), data_sample((64, 64), [], [])]
    proposals = [InstanceData(bboxes=torch.tensor([[2., 2., 40., 40.], [10., 10., 60., 50.]]), scores=torch.ones(2)),
                 InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0))]
    res = head.predict(x, proposals, samples)
    assert len(res) == 2
    assert res[1].bboxes.shape == (0, 4) and res[1].labels.dtype == torch.long
    for r in res:
        assert r.bboxes.shape[1] == 4 and len(r.scores) == len(r.labels) == len(r.bboxes)
    # No proposal at all in the batch.
    none = head.predict(x, [InstanceData(bboxes=torch.zeros(0, 4))] * 2, samples)
    assert all(r.bboxes.shape == (0, 4) for r in none)
    # Raw outputs for all proposals.
    cls, reg = head(x, proposals)
    assert cls.shape == (2, 4) and reg.shape == (2, 12)


def test_standard_roi_head_needs_train_cfg_for_loss():
    head = roi_head(train=False)
    with pytest.raises(ValueError, match='train_cfg'):
        head.loss(feats(1), [InstanceData(bboxes=torch.zeros(0, 4))], [data_sample((64, 64), [], [])])


def test_extractor_fewer_maps_than_strides_and_roi_scale_factor():
    """MMDetection parity: with 2 maps for 4 strides the RoIs are mapped over the 2 maps given (the
    300 px RoI, level 1 of 4, stays on level 1; the 40 px one on level 0); ``roi_scale_factor=2``
    pools [0, 5, 5, 45, 45] from [0, -15, -15, 65, 65], the level still chosen from the 40 px size."""
    torch.manual_seed(0)
    ext = extractor()
    feats = [torch.randn(1, 4, 32, 32), torch.randn(1, 4, 16, 16)]
    rois = torch.tensor([[0., 5, 5, 45, 45], [0., 0, 0, 300, 300]])
    out = ext(feats, rois)
    for i, lvl in enumerate([0, 1]):
        ref = roi_align(feats[lvl], rois[i:i + 1], 7, spatial_scale=1 / (4 * 2 ** lvl), sampling_ratio=0, aligned=True)
        assert torch.allclose(out[i:i + 1], ref, atol=1e-6)
    # 2x around the centre (25, 25): 80 px wide, which alone would map to level 0 too; 300 px -> 600 px
    # (level 3 by size, clamped to 1), still level 1.
    scaled = ext(feats, rois, roi_scale_factor=2.0)
    big = torch.tensor([[0., -15, -15, 65, 65], [0., -150, -150, 450, 450]])
    for i, lvl in enumerate([0, 1]):
        ref = roi_align(feats[lvl], big[i:i + 1], 7, spatial_scale=1 / (4 * 2 ** lvl), sampling_ratio=0, aligned=True)
        assert torch.allclose(scaled[i:i + 1], ref, atol=1e-6)
    # A 100 px RoI would be level 0 by its own size but level 1 once doubled: the level uses its own size.
    roi = torch.tensor([[0., 0, 0, 100, 100]])
    ref = roi_align(feats[0], torch.tensor([[0., -50, -50, 150, 150]]), 7, spatial_scale=1 / 4, sampling_ratio=0,
                    aligned=True)
    assert torch.allclose(ext(feats, roi, roi_scale_factor=2.0), ref, atol=1e-6)
    # One map only: the scale applies too.
    single = ext(feats[:1], rois[:1], roi_scale_factor=2.0)
    assert torch.allclose(single, roi_align(feats[0], big[:1], 7, spatial_scale=1 / 4, sampling_ratio=0, aligned=True),
                          atol=1e-6)


def test_map_roi_levels_torchvision_rule():
    """canonical_scale=224, canonical_level=4: torchvision's LevelMapper on strides 4..32
    (k_min 2, k_max 5): same boundaries as finest_scale=56 (112 -> 1, 111.9 -> 0, 448 -> 3)."""
    from torchvision.ops.poolers import LevelMapper
    ext = SingleRoIExtractor(roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2, aligned=False),
                             out_channels=4, featmap_strides=[4, 8, 16, 32], canonical_scale=224, canonical_level=4)
    sides = torch.tensor([20., 56., 111.9, 112., 223.9, 224., 447.9, 448., 1000.])
    rois = torch.cat([torch.zeros(len(sides), 1), torch.zeros(len(sides), 2), sides[:, None], sides[:, None]], 1)
    assert ext.map_roi_levels(rois, 4).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3]
    torch.manual_seed(0)
    boxes = torch.rand(500, 2) * 300
    boxes = torch.cat([boxes, boxes + torch.rand(500, 2) * 600 + 1e-3], 1)
    rois = torch.cat([torch.zeros(500, 1), boxes], 1)
    assert torch.equal(ext.map_roi_levels(rois, 4), LevelMapper(2, 5)([boxes]))
    with pytest.raises(ValueError, match='power-of-two'):
        SingleRoIExtractor(roi_layer=dict(type='RoIAlign', output_size=7), out_channels=4, featmap_strides=[6, 12],
                           canonical_scale=224)


def test_predict_by_feat_min_bbox_size():
    """min_bbox_size drops class boxes whose side (resized-image pixels) is not above it, before NMS."""
    head = bbox_head(num_classes=2)
    rois = torch.tensor([[0., 10., 20., 50., 60.], [0., 5., 5., 5.005, 15.]])  # RoI 1: 0.005 px wide
    cls = torch.tensor([[-5., 5., -5.], [5., -5., -5.]])
    reg = torch.zeros(2, 8)
    meta = dict(img_shape=(100, 100), scale_factor=(2.0, 4.0))
    keep_all = head.predict_by_feat((rois,), (cls,), (reg,), [meta], RCNN_TEST)[0]
    assert sorted(keep_all.labels.tolist()) == [0, 1]
    cfg = dict(RCNN_TEST, min_bbox_size=1e-2)
    res = head.predict_by_feat((rois,), (cls,), (reg,), [meta], cfg, rescale=True)[0]
    assert res.labels.tolist() == [1]
    assert torch.allclose(res.bboxes, torch.tensor([[5., 5., 25., 15.]]), atol=1e-4)
