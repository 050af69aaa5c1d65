"""soft_nms / batched soft-NMS / nms_match against slow reference loops written here, which follow
mmcv's compiled kernels step by step (swap-to-front selection, decay, discard below min_score)."""
import math

import pytest
import torch

from rcnn_plugins.models.layers import batched_nms, multiclass_nms, nms_match, soft_nms


def ref_soft_nms(boxes, scores, iou_threshold, sigma, min_score, method):
    """mmcv's soft_nms_cpu, one box at a time in Python floats (float32 arithmetic emulated by
    rounding through torch would not change these well-separated cases)."""
    b = [list(map(float, x)) for x in boxes]
    s = [float(x) for x in scores]
    inds = list(range(len(b)))
    n = len(b)
    i = 0
    while i < n:
        m = max(range(i, n), key=lambda k: (s[k], -k))  # first position holding the max
        for arr in (b, s, inds):
            arr[i], arr[m] = arr[m], arr[i]
        x1, y1, x2, y2 = b[i]
        area_i = (x2 - x1) * (y2 - y1)
        pos = i + 1
        while pos < n:
            xx1, yy1 = max(x1, b[pos][0]), max(y1, b[pos][1])
            xx2, yy2 = min(x2, b[pos][2]), min(y2, b[pos][3])
            inter = max(0., xx2 - xx1) * max(0., yy2 - yy1)
            area = (b[pos][2] - b[pos][0]) * (b[pos][3] - b[pos][1])
            ovr = inter / (area_i + area - inter)
            if method == 'linear':
                w = 1 - ovr if ovr >= iou_threshold else 1.
            elif method == 'gaussian':
                w = math.exp(-(ovr * ovr) / sigma)
            else:
                w = 0. if ovr >= iou_threshold else 1.
            s[pos] *= w
            if s[pos] < min_score:
                for arr in (b, s, inds):
                    arr[pos] = arr[n - 1]
                n -= 1
                pos -= 1
            pos += 1
        i += 1
    return inds[:n], s[:n]


def clustered_boxes(n, seed):
    """Boxes in a few clusters so that decays chain; distinct scores (no ties)."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(4, 2, generator=g) * 80
    c = centers[torch.randint(0, 4, (n,), generator=g)] + torch.randn(n, 2, generator=g) * 4
    wh = 10 + torch.rand(n, 2, generator=g) * 10
    boxes = torch.cat([c - wh / 2, c + wh / 2], 1)
    scores = torch.randperm(n, generator=g).float() / n * 0.9 + 0.05
    return boxes, scores


@pytest.mark.parametrize('method,thr,min_score', [('linear', 0.3, 1e-3), ('linear', 0.5, 0.2),
                                                  ('gaussian', 0.3, 1e-3), ('gaussian', 0.3, 0.1),
                                                  ('naive', 0.4, 1e-3)])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_soft_nms_matches_reference_loop(method, thr, min_score, seed):
    boxes, scores = clustered_boxes(40, seed)
    dets, inds = soft_nms(boxes, scores, iou_threshold=thr, sigma=0.5, min_score=min_score, method=method)
    ref_inds, ref_scores = ref_soft_nms(boxes.tolist(), scores.tolist(), thr, 0.5, min_score, method)
    assert inds.tolist() == ref_inds
    torch.testing.assert_close(dets[:, 4], torch.tensor(ref_scores), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dets[:, :4], boxes[inds])
    if method != 'naive':
        assert (dets[:, 4] < scores[inds] - 1e-6).any()  # the decay really happened


def test_soft_nms_linear_by_hand():
    # Box 1 overlaps box 0 with IoU 81/119; linear decay 0.6 * (1 - 81/119); box 2 untouched.
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]])
    scores = torch.tensor([0.9, 0.6, 0.7])
    dets, inds = soft_nms(boxes, scores, iou_threshold=0.3, min_score=1e-3, method='linear')
    assert inds.tolist() == [0, 2, 1]
    torch.testing.assert_close(dets[:, 4], torch.tensor([0.9, 0.7, 0.6 * (1 - 81 / 119)]))
    # A min_score above the decayed score drops it.
    _, inds = soft_nms(boxes, scores, iou_threshold=0.3, min_score=0.3, method='linear')
    assert inds.tolist() == [0, 2]


def test_batched_soft_nms_is_per_class_and_max_num():
    boxes, scores = clustered_boxes(60, 5)
    idxs = torch.arange(60) % 3
    cfg = dict(type='soft_nms', iou_threshold=0.3, min_score=0.05, method='gaussian', sigma=0.5)
    dets, keep = batched_nms(boxes, scores, idxs, cfg)
    # Reference: each class alone, then merged by decayed score. Only the overall first box is
    # exempt from min_score in mmcv; every class's scores here start above 0.05.
    ref = []
    for c in range(3):
        m = (idxs == c).nonzero().flatten()
        i, s = ref_soft_nms(boxes[m].tolist(), scores[m].tolist(), 0.3, 0.5, 0.05, 'gaussian')
        ref += [(sc, int(m[k])) for k, sc in zip(i, s)]
    ref.sort(key=lambda t: -t[0])
    assert keep.tolist() == [k for _, k in ref]
    torch.testing.assert_close(dets[:, 4], torch.tensor([s for s, _ in ref]), rtol=1e-5, atol=1e-6)
    dets5, keep5 = batched_nms(boxes, scores, idxs, dict(cfg, max_num=5))
    assert keep5.tolist() == keep[:5].tolist()
    # class_agnostic: one soft-NMS over everything.
    _, keep_ag = batched_nms(boxes, scores, idxs, dict(cfg, class_agnostic=True))
    ref_ag, _ = ref_soft_nms(boxes.tolist(), scores.tolist(), 0.3, 0.5, 0.05, 'gaussian')
    assert keep_ag.tolist() == ref_ag


def test_multiclass_nms_soft_and_empty():
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.]])
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.6, 0.8, 0.0]])  # 2 classes + background
    dets, labels = multiclass_nms(boxes, scores, 0.05, dict(type='soft_nms', iou_threshold=0.3, min_score=0.05))
    # Class 0: box 0 (0.9), box 1 decayed 0.6 * (1 - 81/119); class 1: box 1 (0.8), box 0 decayed
    # to 0.1 * 38/119 = 0.032 < min_score: dropped.
    torch.testing.assert_close(dets[:, 4], torch.tensor([0.9, 0.8, 0.6 * 38 / 119]))
    assert labels.tolist() == [0, 1, 0]
    dets, keep = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long),
                             dict(type='soft_nms'))
    assert dets.shape == (0, 5) and keep.shape == (0,)


def ref_nms_match(dets, thr):
    order = sorted(range(len(dets)), key=lambda k: -dets[k][4])
    suppressed, groups = set(), []
    for a, i in enumerate(order):
        if i in suppressed:
            continue
        group = [i]
        for j in order[a + 1:]:
            if j in suppressed:
                continue
            bi, bj = dets[i], dets[j]
            w = max(0., min(bi[2], bj[2]) - max(bi[0], bj[0]))
            h = max(0., min(bi[3], bj[3]) - max(bi[1], bj[1]))
            inter = w * h
            ovr = inter / ((bi[2] - bi[0]) * (bi[3] - bi[1]) + (bj[2] - bj[0]) * (bj[3] - bj[1]) - inter)
            if ovr >= thr:
                suppressed.add(j)
                group.append(j)
        groups.append(group)
    return groups


@pytest.mark.parametrize('seed', [0, 3])
def test_nms_match_matches_reference(seed):
    boxes, scores = clustered_boxes(50, seed)
    dets = torch.cat([boxes, scores[:, None]], 1)
    got = [g.tolist() for g in nms_match(dets, 0.4)]
    assert got == ref_nms_match(dets.tolist(), 0.4)
    assert nms_match(dets[:0], 0.4) == []
    # IoU exactly at the threshold suppresses (>=), as mmcv: boxes [0,10]x[0,10], [0,5]x[0,10]: IoU 0.5.
    d = torch.tensor([[0., 0., 10., 10., 0.9], [0., 0., 5., 10., 0.8]])
    assert [g.tolist() for g in nms_match(d, 0.5)] == [[0, 1]]


def test_bad_nms_cfg_fails_when_the_detector_is_built():
    from mmengine.config import Config

    from rcnn_plugins.registry import MODELS
    cfg = Config.fromfile('configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py').model
    cfg.backbone.init_cfg = None
    cfg.test_cfg.rcnn.nms = dict(type='soft_nmss', iou_threshold=0.5)
    with pytest.raises(NotImplementedError, match=r"test_cfg.rcnn.nms: NMS type 'soft_nmss'"):
        MODELS.build(cfg)
    cfg.test_cfg.rcnn.nms = dict(type='soft_nms', iou_threshold=0.5, method='linearr')
    with pytest.raises(ValueError, match='test_cfg.rcnn.nms: soft_nms method'):
        MODELS.build(cfg)
    cfg.test_cfg.rcnn.nms = dict(type='soft_nms', iou_threshold=0.5, min_score=0.05)
    MODELS.build(cfg)
    cfg.neck.upsample_cfg = dict(mode='bilinar')
    with pytest.raises(ValueError, match='upsample_cfg'):
        MODELS.build(cfg)
