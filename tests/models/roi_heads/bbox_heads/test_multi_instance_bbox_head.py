"""MultiInstanceBBoxHead (CrowdDet): the EMD loss against hand arithmetic, set NMS against a slow greedy
loop, the refine module, decoding, and the state_dict layouts of MMDetection's two configs."""
import json
import math
import os
import os.path as osp

import pytest
import torch
from repo_paths import REPO_ROOT

from rcnn_plugins.models.layers import set_nms
from rcnn_plugins.models.roi_heads.bbox_heads import MultiInstanceBBoxHead

ZOO = os.environ.get('MMDET_ZOO_DIR', osp.join(REPO_ROOT, '..', 'shared', 'mmdet_zoo'))


def head(**kw):
    cfg = dict(num_classes=1, in_channels=4, roi_feat_size=2, fc_out_channels=8,
               loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, reduction='none'),
               loss_bbox=dict(type='SmoothL1Loss', reduction='none'))
    cfg.update(kw)
    return MultiInstanceBBoxHead(**cfg)


def ce(logits, label):
    return math.log(sum(math.exp(z) for z in logits)) - logits[label]


def sl1(pred, target):
    return sum(0.5 * d * d if abs(d) < 1 else abs(d) - 0.5 for d in (p - t for p, t in zip(pred, target)))


def test_emd_loss_is_the_cheaper_matching_by_hand():
    h = head()
    cls = [[0.3, 1.2], [2.0, -0.5]]             # prediction 0 says person, prediction 1 background
    deltas = [[0.1, -0.2, 0.0, 0.3], [1.5, 0.2, -2.0, 0.1]]
    target_box = [0.2, -0.1, 0.1, 0.2]
    # Targets: a person (label 1, target_box) and background (label 0), given in both orders.
    for labels, targets in (([1, 0], [target_box, [0.] * 4]), ([0, 1], [[9.] * 4, target_box])):
        loss = h.loss(torch.tensor([cls[0] + cls[1]]), torch.tensor([deltas[0] + deltas[1]]), None,
                      torch.tensor([labels]), None, torch.tensor([targets[0] + targets[1]]), None)['loss_rcnn_emd']
        straight = ce(cls[0], 1) + sl1(deltas[0], target_box) + ce(cls[1], 0)
        crossed = ce(cls[1], 1) + sl1(deltas[1], target_box) + ce(cls[0], 0)
        assert straight < crossed
        assert loss.item() == pytest.approx(min(straight, crossed), rel=1e-5)
    # Two RoIs: the mean of each RoI's minimum; an ignore target (-1) counts as background (MMDetection's).
    cls2 = [[1.0, 0.0], [0.0, 1.0]]
    d2 = [[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    t2 = [[0.5, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    loss = h.loss(torch.tensor([cls[0] + cls[1], cls2[0] + cls2[1]]),
                  torch.tensor([deltas[0] + deltas[1], d2[0] + d2[1]]), None,
                  torch.tensor([[1, 0], [1, -1]]), None,
                  torch.tensor([target_box + [0.] * 4, t2[0] + t2[1]]), None)['loss_rcnn_emd']
    roi0 = ce(cls[0], 1) + sl1(deltas[0], target_box) + ce(cls[1], 0)
    roi1 = min(ce(cls2[0], 1) + sl1(d2[0], t2[0]) + ce(cls2[1], 0),
               ce(cls2[1], 1) + sl1(d2[1], t2[0]) + ce(cls2[0], 0))
    assert loss.item() == pytest.approx((roi0 + roi1) / 2, rel=1e-5)


def test_emd_loss_weights_and_empty():
    h = head(loss_cls=dict(type='CrossEntropyLoss', loss_weight=2.0, reduction='none'),
             loss_bbox=dict(type='SmoothL1Loss', loss_weight=0.5, reduction='none'))
    cls, deltas = [0.3, 1.2, 2.0, -0.5], [0.1, -0.2, 0.0, 0.3, 1.5, 0.2, -2.0, 0.1]
    loss = h.loss(torch.tensor([cls]), torch.tensor([deltas]), None, torch.tensor([[1, 1]]), None,
                  torch.zeros(1, 8), None)['loss_rcnn_emd']
    a = 2 * (ce(cls[:2], 1) + ce(cls[2:], 1)) + 0.5 * (sl1(deltas[:4], [0] * 4) + sl1(deltas[4:], [0] * 4))
    assert loss.item() == pytest.approx(a, rel=1e-5)  # both targets equal: both matchings cost the same
    empty = h.loss(torch.zeros(0, 4), torch.zeros(0, 8, requires_grad=True), None, torch.zeros(0, 2), None,
                   torch.zeros(0, 8), None)['loss_rcnn_emd']
    assert empty.item() == 0 and empty.requires_grad


def greedy_set_nms(boxes, scores, groups, thr):
    """Slow reference: in score order, a kept box removes every later box of another group with IoU > thr."""
    def iou(a, b):
        iw = max(0., min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0., min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-6)
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    removed, kept = set(), []
    for pos, i in enumerate(order):
        if i in removed:
            continue
        kept.append(i)
        for j in order[pos + 1:]:
            if groups[j] != groups[i] and iou(boxes[i], boxes[j]) > thr:
                removed.add(j)
    return kept


def test_set_nms_hand_cases():
    pair = torch.tensor([[0., 0., 10., 10.], [1., 0., 11., 10.]])  # IoU 0.82
    scores = torch.tensor([0.9, 0.8])
    assert set_nms(pair, scores, torch.tensor([0, 0]), 0.5).tolist() == [0, 1]  # same RoI: both stay
    assert set_nms(pair, scores, torch.tensor([0, 1]), 0.5).tolist() == [0]    # different RoIs: suppressed
    # A chain: 0 removes 1; 1 would remove 2, but 1 is gone, so 2 stays (greedy, not "Fast NMS").
    chain = torch.tensor([[0., 0., 10., 10.], [4., 0., 14., 10.], [8., 0., 18., 10.]])
    assert set_nms(chain, torch.tensor([0.9, 0.8, 0.7]), torch.arange(3), 0.3).tolist() == [0, 2]
    assert set_nms(chain, torch.tensor([0.9, 0.8, 0.7]), torch.arange(3), 0.3, max_num=1).tolist() == [0]


@pytest.mark.parametrize('block', [256, 7, 1])
def test_set_nms_matches_slow_loop_on_random_crowds(block):
    g = torch.Generator().manual_seed(1)
    for trial in range(10):
        n = 60
        xy = torch.rand(n, 2, generator=g) * 50
        boxes = torch.cat([xy, xy + 10 + torch.rand(n, 2, generator=g) * 20], 1)
        scores = torch.rand(n, generator=g)
        groups = torch.arange(n) // 2  # pairs, as the k = 2 predictions of one RoI
        ref = greedy_set_nms(boxes.tolist(), scores.tolist(), groups.tolist(), 0.5)
        assert set_nms(boxes, scores, groups, 0.5, block=block).tolist() == ref, trial
        assert set_nms(boxes, scores, groups, 0.5, max_num=9, block=block).tolist() == ref[:9], trial


def test_set_nms_staticmethod_mmdetection_interface():
    boxes = torch.tensor([[0., 0., 10., 10., 0.], [1., 0., 11., 10., 0.], [1., 0., 11., 10., 1.], [50, 50, 60, 60, 2]])
    scores = torch.tensor([0.9, 0.8, 0.85, 0.005])
    kept, kept_scores = MultiInstanceBBoxHead.set_nms(boxes, scores, 0.01, 0.5, 10)
    assert kept_scores.tolist() == pytest.approx([0.9, 0.8]) and kept[:, 4].tolist() == [0, 0]


def test_refine_changes_predictions_and_keeps_layout():
    torch.manual_seed(0)
    plain, refine = head(), head(with_refine=True)
    refine.load_state_dict(plain.state_dict(), strict=False)  # same first-stage weights
    extra = set(refine.state_dict()) - set(plain.state_dict())
    assert extra == {'shared_fcs_ref.weight', 'shared_fcs_ref.bias', 'fc_cls_ref.0.weight', 'fc_cls_ref.0.bias',
                     'fc_cls_ref.1.weight', 'fc_cls_ref.1.bias', 'fc_reg_ref.0.weight', 'fc_reg_ref.0.bias',
                     'fc_reg_ref.1.weight', 'fc_reg_ref.1.bias'}
    assert refine.shared_fcs_ref.in_features == 8 + 20  # shared features + (4 deltas + score) x 4
    x = torch.randn(3, 4, 2, 2)
    cls, reg = plain(x)
    cls1, reg1, cls_ref, reg_ref = refine(x)
    torch.testing.assert_close(cls1, cls)
    torch.testing.assert_close(reg1, reg)
    assert cls_ref.shape == (3, 4) and reg_ref.shape == (3, 8)
    assert not torch.allclose(cls_ref, cls) and not torch.allclose(reg_ref, reg)
    # The refined prediction of instance 0 reads instance 0's first prediction: changing fc_reg[1] leaves it.
    with torch.no_grad():
        refine.fc_reg[1].weight.add_(1.0)
    _, _, cls_ref2, reg_ref2 = refine(x)
    torch.testing.assert_close(reg_ref2[:, :4], reg_ref[:, :4])
    assert not torch.allclose(reg_ref2[:, 4:], reg_ref[:, 4:])


def test_predict_decodes_k_boxes_per_roi_and_rescales():
    h = head()
    rois = torch.tensor([[0., 10., 10., 50., 90.], [0., 200., 200., 240., 280.]])
    cls = torch.tensor([[0., 3., 0., 2.], [0., 1., 5., 0.]])  # RoI 1's second prediction is background
    deltas = torch.zeros(2, 8)
    deltas[0, 4] = 1.0  # second box of RoI 0 moved right by 0.1 * 40 = 4 px
    meta = dict(img_shape=(300, 300), scale_factor=(2.0, 2.0))
    cfg = dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
    res = h.predict_by_feat([rois], [cls], [deltas], [meta], cfg, rescale=True)[0]
    p = torch.softmax(cls.view(4, 2), -1)[:, 1]
    # Both boxes of RoI 0 stay (same RoI), RoI 1's first box stays, its background one is under score_thr.
    torch.testing.assert_close(res.scores, p[[0, 1, 2]])
    torch.testing.assert_close(res.bboxes, torch.tensor([[10., 10., 50., 90.], [14., 10., 54., 90.],
                                                         [200., 200., 240., 280.]]) / 2)
    assert res.labels.tolist() == [0, 0, 0]
    raw = h.predict_by_feat([rois], [cls], [deltas], [meta], None)[0]
    assert raw.bboxes.shape == (4, 4) and raw.scores.shape == (4, 2)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match='num_classes must be 1'):
        head(num_classes=2)
    with pytest.raises(ValueError, match='reg_decoded_bbox'):
        head(reg_decoded_bbox=True)


@pytest.mark.parametrize('with_refine,name', [(False, 'crowddet-rcnn_r50_fpn_8xb2-30e_crowdhuman'),
                                              (True, 'crowddet-rcnn_refine_r50_fpn_8xb2-30e_crowdhuman')])
def test_state_dict_equals_mmdetection(with_refine, name):
    path = osp.join(ZOO, 'keys', f'crowddet__{name}.json')
    if not osp.exists(path):
        pytest.skip(f'MMDetection zoo key list {path} not found (set MMDET_ZOO_DIR to the mmdet_zoo folder)')
    with open(path) as f:
        ref = json.load(f)['state_dict']
    prefix = 'roi_head.bbox_head.'
    theirs = {k[len(prefix):]: v for k, v in ref.items() if k.startswith(prefix)}
    h = head(with_refine=with_refine, in_channels=256, roi_feat_size=7, fc_out_channels=1024)
    assert {k: list(v.shape) for k, v in h.state_dict().items()} == theirs


def test_emd_loss_equals_the_two_orderings_on_random_rois():
    """MMDetection's formulation, written out with torch.nn.functional: for each ordering, the two
    predictions paired with the two targets, CE (ignore label -1 scored as background) plus the
    SmoothL1 of person targets, summed per RoI; the smaller ordering per RoI, averaged."""
    import torch.nn.functional as F
    g = torch.Generator().manual_seed(3)
    num = 12
    cls = torch.randn(num, 4, generator=g)
    reg = torch.randn(num, 8, generator=g)
    labels = torch.randint(-1, 2, (num, 2), generator=g)
    targets = torch.randn(num, 8, generator=g)

    def cost(c, r, lab, t):
        out = F.cross_entropy(c, lab.clamp(min=0), reduction='none')
        box = F.smooth_l1_loss(r, t, beta=1.0, reduction='none').sum(1)
        return out + torch.where(lab > 0, box, torch.zeros_like(box))

    straight = cost(cls[:, :2], reg[:, :4], labels[:, 0], targets[:, :4]) + \
        cost(cls[:, 2:], reg[:, 4:], labels[:, 1], targets[:, 4:])
    crossed = cost(cls[:, 2:], reg[:, 4:], labels[:, 0], targets[:, :4]) + \
        cost(cls[:, :2], reg[:, :4], labels[:, 1], targets[:, 4:])
    expected = torch.minimum(straight, crossed).mean()
    loss = head().loss(cls, reg, None, labels, None, targets, None)['loss_rcnn_emd']
    torch.testing.assert_close(loss, expected)
