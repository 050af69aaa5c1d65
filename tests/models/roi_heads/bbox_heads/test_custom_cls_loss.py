"""BBoxHead with a custom classification loss (MMDetection's ``CrossEntropyCustomLoss`` interface, as in
the V3Det configs): classifier width, scores, loss and accuracy against values computed by hand; the
softmax path unchanged; the V3Det Faster R-CNN builds MMDetection's state_dict layout."""
import json
import math
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from repo_paths import REPO_ROOT

from rcnn_plugins.models.postprocess import rcnn_detections
from rcnn_plugins.registry import MODELS

ZOO = osp.join(os.environ.get('MMDET_ZOO_DIR', osp.join(REPO_ROOT, '..', 'shared', 'mmdet_zoo')), 'keys')
TEST_CFG = dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)


def _head(loss_cls, num_classes=3):
    init_default_scope('rcnn_plugins')
    return MODELS.build(dict(type='Shared2FCBBoxHead', in_channels=2, fc_out_channels=8, roi_feat_size=2,
                             num_classes=num_classes, reg_class_agnostic=True, loss_cls=loss_cls,
                             loss_bbox=dict(type='L1Loss', loss_weight=1.0)))


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_sigmoid_custom_loss_predicts_num_classes_logits():
    head = _head(dict(type='CrossEntropyCustomLoss', num_classes=3, use_sigmoid=True))
    assert head.fc_cls.out_features == 3 and head.cls_channels == 3
    assert head.fc_reg.out_features == 4
    cls_score, bbox_pred = head(torch.randn(5, 2, 2, 2))
    assert cls_score.shape == (5, 3) and bbox_pred.shape == (5, 4)
    # The softmax custom loss keeps the background logit.
    assert _head(dict(type='CrossEntropyCustomLoss', num_classes=3)).fc_cls.out_features == 4


def test_sigmoid_custom_scores_by_hand():
    head = _head(dict(type='CrossEntropyCustomLoss', num_classes=3, use_sigmoid=True))
    logits = torch.tensor([[0.0, 1.0, -2.0], [3.0, 2.0, 1.0]])
    scores = head.cls_activation(logits)
    for r, row in enumerate(logits.tolist()):
        probs = [_sigmoid(v) for v in row]
        expected = probs + [min(max(1 - sum(probs), 0.0), 1.0)]  # background = clamp(1 - sum, 0, 1)
        assert scores[r].tolist() == pytest.approx(expected, abs=1e-6)
    assert scores[1, 3].item() == 0.0  # sum of class probabilities > 1: background clamped to 0


def test_sigmoid_custom_loss_and_accuracy_by_hand():
    head = _head(dict(type='CrossEntropyCustomLoss', num_classes=3, use_sigmoid=True))
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [1.0, 1.0, -1.0], [-3.0, 0.0, 0.0]])
    labels = torch.tensor([0, 1, 2, 3])  # the last RoI is background (label num_classes)
    weights = torch.ones(4)
    out = head.loss(logits, torch.zeros(4, 4), torch.zeros(4, 5), labels, weights, torch.zeros(4, 4),
                    torch.zeros(4, 4))
    # Binary CE per class against one-hot targets (background: all zeros), summed over classes,
    # averaged over the 4 RoIs with weight > 0.
    total = 0.0
    for row, lab in zip(logits.tolist(), labels.tolist()):
        for c, x in enumerate(row):
            p = _sigmoid(x)
            total += -math.log(p) if c == lab else -math.log(1 - p)
    assert out['loss_cls'].item() == pytest.approx(total / 4, rel=1e-5)
    # Accuracy over the foreground RoIs only: argmax hits RoI 0 (class 0), misses RoI 1 (argmax 2 != 1),
    # misses RoI 2 (argmax 0 or 1 != 2): 1 of 3.
    assert 'acc' not in out
    assert out['acc_classes'].item() == pytest.approx(100.0 / 3, rel=1e-5)
    assert out['loss_bbox'].item() == 0.0


def test_sigmoid_custom_detections_use_sigmoid_scores():
    head = _head(dict(type='CrossEntropyCustomLoss', num_classes=3, use_sigmoid=True))
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    proposals = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    meta = dict(img_shape=(20, 20), scale_factor=(1.0, 1.0))
    res = head.predict_by_feat([torch.cat([torch.zeros(1, 1), proposals], 1)], [logits], [torch.zeros(1, 4)],
                               [meta], TEST_CFG)[0]
    # One box per class, same box (zero deltas): class-wise NMS keeps each, scores = sigmoid(logit).
    by_label = dict(zip(res.labels.tolist(), res.scores.tolist()))
    assert by_label == pytest.approx({0: _sigmoid(2.0), 1: _sigmoid(-1.0), 2: _sigmoid(0.5)}, abs=1e-6)
    assert res.bboxes[0].tolist() == pytest.approx([0.0, 0.0, 10.0, 10.0])


def test_softmax_path_unchanged():
    head = _head(dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
    assert head.fc_cls.out_features == 4 and not head.custom_cls_channels
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.3], [0.0, 0.0, 0.0, 5.0]])
    assert torch.equal(head.cls_activation(logits), torch.softmax(logits, -1))
    proposals = torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 2.0, 8.0, 9.0]])
    a = rcnn_detections(proposals, logits, torch.zeros(2, 4), head.bbox_coder, torch.tensor([20.0, 20.0]), TEST_CFG)
    b = rcnn_detections(proposals, logits, torch.zeros(2, 4), head.bbox_coder, torch.tensor([20.0, 20.0]), TEST_CFG,
                        activation=lambda s: torch.softmax(s, -1))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    out = head.loss(logits, torch.zeros(2, 4), torch.zeros(2, 5), torch.tensor([0, 3]), torch.ones(2),
                    torch.zeros(2, 4), torch.zeros(2, 4))
    assert set(out) == {'loss_cls', 'loss_bbox', 'acc'}
    assert out['acc'].item() == pytest.approx(100.0)


def test_v3det_faster_rcnn_matches_mmdetection_layout():
    name = 'v3det__faster_rcnn_r50_fpn_8x4_sample1e-3_mstrain_v3det_2x.json'
    ref_path = osp.join(ZOO, name)
    if not osp.exists(ref_path):
        pytest.skip(f'MMDetection zoo key list not found at {ref_path} (set MMDET_ZOO_DIR to the mmdet_zoo folder)')
    ref = json.load(open(ref_path))['state_dict']
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', 'v3det', name.split('__')[1].replace('.json', '.py')))
    cfg.model.backbone.init_cfg = None
    init_default_scope('rcnn_plugins')
    mine = {k: list(v.shape) for k, v in MODELS.build(cfg.model).state_dict().items()}
    assert sorted(set(mine) ^ set(ref)) == []
    assert {k: v for k, v in mine.items() if ref[k] != v} == {}
    assert mine['roi_head.bbox_head.fc_cls.weight'] == [13204, 1024]


def test_cascade_scores_are_the_activation_of_the_averaged_logits():
    from mmengine.structures import InstanceData

    from rcnn_plugins.models.roi_heads import CascadeRoIHead
    from rcnn_plugins.structures import DetDataSample
    torch.manual_seed(0)
    extractor = dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlign', output_size=2, sampling_ratio=0),
                     out_channels=2, featmap_strides=[4, 8, 16, 32])
    head = dict(type='Shared2FCBBoxHead', in_channels=2, fc_out_channels=8, roi_feat_size=2, num_classes=3,
                reg_class_agnostic=True, loss_cls=dict(type='CrossEntropyCustomLoss', num_classes=3, use_sigmoid=True),
                loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    test_cfg = dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=1.0), max_per_img=1000)
    cascade = CascadeRoIHead(2, [1.0, 0.5], extractor, [head, head], test_cfg=test_cfg)
    with torch.no_grad():
        for p in cascade.parameters():
            p.normal_(0, 0.5)
    x = tuple(torch.randn(1, 2, 64 // s, 64 // s) for s in (4, 8, 16, 32))
    s = DetDataSample(metainfo=dict(img_shape=(64, 64), scale_factor=(1.0, 1.0), ori_shape=(64, 64)))
    props = [InstanceData(bboxes=torch.tensor([[4.0, 4.0, 30.0, 40.0], [20.0, 10.0, 60.0, 50.0]]))]
    mean_logits, _ = cascade.forward(x, props, [s])
    assert mean_logits.shape == (2, 3)
    det = cascade.predict(x, props, [s])[0]
    expected = sorted(torch.sigmoid(mean_logits).flatten().tolist(), reverse=True)  # 6 (RoI, class) pairs
    assert det.scores.tolist() == pytest.approx(expected, abs=1e-6)
