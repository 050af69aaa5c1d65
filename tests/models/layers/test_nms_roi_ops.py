"""batched_nms / multiclass_nms on hand cases; RoIAlign / RoIPool against torchvision and by hand."""
import pytest
import torch
from torchvision.ops import roi_align, roi_pool

from rcnn_plugins.models.layers import RoIAlign, RoIPool, batched_nms, multiclass_nms
from rcnn_plugins.registry import MODELS

NMS = dict(type='nms', iou_threshold=0.5)


def test_batched_nms_class_wise():
    # Boxes 0 and 1 overlap with IoU 81/119 ~ 0.68; box 2 is far away.
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]])
    scores = torch.tensor([0.6, 0.9, 0.7])
    # Different classes: nothing suppressed; sorted by score.
    dets, keep = batched_nms(boxes, scores, torch.tensor([0, 1, 0]), NMS)
    assert keep.tolist() == [1, 2, 0]
    torch.testing.assert_close(dets, torch.cat([boxes[keep], scores[keep, None]], 1))
    # Same class: the lower-scored box 0 is suppressed.
    dets, keep = batched_nms(boxes, scores, torch.tensor([0, 0, 0]), NMS)
    assert keep.tolist() == [1, 2]
    # class_agnostic (argument or cfg key) ignores the class ids.
    _, keep = batched_nms(boxes, scores, torch.tensor([0, 1, 0]), NMS, class_agnostic=True)
    assert keep.tolist() == [1, 2]
    _, keep = batched_nms(boxes, scores, torch.tensor([0, 1, 0]), dict(NMS, class_agnostic=True))
    assert keep.tolist() == [1, 2]
    # A high threshold keeps both.
    _, keep = batched_nms(boxes, scores, torch.tensor([0, 0, 0]), dict(type='nms', iou_threshold=0.7))
    assert keep.tolist() == [1, 2, 0]


def test_batched_nms_max_num_none_cfg_and_empty():
    boxes = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.], [40., 40., 50., 50.]])
    scores = torch.tensor([0.1, 0.8, 0.5])
    dets, keep = batched_nms(boxes, scores, torch.zeros(3, dtype=torch.long), dict(NMS, max_num=2))
    assert keep.tolist() == [1, 2] and dets.shape == (2, 5)
    # nms_cfg None: just sort.
    dets, keep = batched_nms(torch.cat([boxes, boxes]), torch.cat([scores, scores + 0.05]),
                             torch.zeros(6, dtype=torch.long), None)
    assert keep.tolist() == [4, 1, 5, 2, 3, 0]
    torch.testing.assert_close(dets[:, 4], torch.tensor([0.85, 0.8, 0.55, 0.5, 0.15, 0.1]))
    dets, keep = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), NMS)
    assert dets.shape == (0, 5) and keep.shape == (0,)
    # Half-precision boxes (autocast): suppressed in float32, dets keep the boxes' dtype. Class 79 x
    # coordinate 1000 would overflow float16 offsets.
    half = torch.tensor([[0., 0., 1000., 1000.], [1., 1., 1001., 1001.]]).half()
    dets, keep = batched_nms(half, torch.tensor([0.5, 0.9]), torch.tensor([79, 79]), NMS)
    assert keep.tolist() == [1] and dets.dtype == torch.float16


def test_nms_cfg_errors():
    args = (torch.zeros(1, 4), torch.zeros(1), torch.zeros(1, dtype=torch.long))
    with pytest.raises(NotImplementedError, match="'soft_nmss' is not available"):
        batched_nms(*args, dict(type='soft_nmss', iou_threshold=0.5))
    with pytest.raises(ValueError, match='unknown keys'):
        batched_nms(*args, dict(type='nms', iou_threshold=0.5, sigma=0.5))  # a soft_nms key on hard NMS
    with pytest.raises(ValueError, match='iou_threshold'):
        batched_nms(*args, dict(type='nms'))
    with pytest.raises(ValueError, match='unknown'):
        batched_nms(*args, dict(type='nms', iou_threshold=0.5, iou_thr=0.5))


def test_multiclass_nms_hand_case():
    # 3 candidates, 2 classes + background column; class-specific boxes (N, 2 * 4).
    a, b, far = [0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]
    multi_bboxes = torch.tensor([a + far, b + far, far + a])
    multi_scores = torch.tensor([[0.6, 0.05, 0.35],
                                 [0.9, 0.02, 0.08],
                                 [0.01, 0.3, 0.69]])
    dets, labels = multiclass_nms(multi_bboxes, multi_scores, score_thr=0.04, nms_cfg=NMS)
    # Candidates above 0.04: (0, c0) 0.6, (0, c1) 0.05, (1, c0) 0.9, (2, c1) 0.3 (box a).
    # Class 0: box b (0.9) suppresses box a (0.6). Class 1: 'far' 0.05 and 'a' 0.3 both kept.
    # The background column (0.35 / 0.08 / 0.69) is never a detection.
    assert labels.tolist() == [0, 1, 1]
    torch.testing.assert_close(dets, torch.tensor([b + [0.9], a + [0.3], far + [0.05]]))
    dets, labels, inds = multiclass_nms(multi_bboxes, multi_scores, 0.04, NMS, max_num=2, return_inds=True)
    assert labels.tolist() == [0, 1] and inds.tolist() == [2, 5]  # flat index = box * C + class
    # Shared (N, 4) boxes and score factors (applied after the threshold).
    dets, labels = multiclass_nms(torch.tensor([a, b, far]), multi_scores, 0.04, NMS,
                                  score_factors=torch.tensor([1.0, 0.5, 2.0]))
    # class 0: a 0.6, b 0.45 -> b suppressed; class 1: a 0.05, far 0.6.
    assert labels.tolist() == [0, 1, 1]
    torch.testing.assert_close(dets[:, 4], torch.tensor([0.6, 0.6, 0.05]))
    # Nothing above the threshold -> empty (0, 5).
    dets, labels = multiclass_nms(multi_bboxes, multi_scores, 0.95, NMS)
    assert dets.shape == (0, 5) and labels.shape == (0,)


def test_roi_align_matches_torchvision_and_hand_values():
    torch.manual_seed(0)
    feat = torch.randn(2, 3, 16, 20)
    rois = torch.tensor([[0, 4., 4., 40., 30.], [1, 0., 8., 60., 60.], [1, 10.5, 3.2, 17.9, 50.]])
    layer = MODELS.build(dict(type='RoIAlign', output_size=7, sampling_ratio=0, spatial_scale=0.25))
    out = layer(feat, rois)
    assert out.shape == (3, 3, 7, 7)
    torch.testing.assert_close(out, roi_align(feat, rois, (7, 7), 0.25, 0, True))
    out2 = RoIAlign((2, 3), spatial_scale=0.5, sampling_ratio=2, aligned=False)(feat, rois)
    torch.testing.assert_close(out2, roi_align(feat, rois, (2, 3), 0.5, 2, False))
    # Constant feature map: every pooled value is the constant.
    const = torch.full((1, 2, 10, 10), 3.5)
    out = RoIAlign(4)(const, torch.tensor([[0, 1., 2., 7., 9.]]))
    torch.testing.assert_close(out, torch.full((1, 2, 4, 4), 3.5))
    # Linear ramp f(x, y) = x (value at pixel centre x + 0.5 in aligned coordinates = x).
    # With aligned=True the box [2, 0, 6, 4] maps to continuous [1.5, 5.5]; bilinear sampling of a
    # linear function is exact, so each of the 2 bins averages to its centre: 2.5 and 4.5.
    ramp = torch.arange(10.).expand(1, 1, 10, 10).contiguous()
    out = RoIAlign(2, sampling_ratio=2)(ramp, torch.tensor([[0, 2., 0., 6., 4.]]))
    torch.testing.assert_close(out[0, 0], torch.tensor([[2.5, 4.5], [2.5, 4.5]]))


def test_roi_pool_matches_torchvision_and_max():
    torch.manual_seed(1)
    feat = torch.randn(1, 4, 12, 12)
    rois = torch.tensor([[0, 0., 0., 40., 40.], [0, 8., 4., 20., 44.]])
    layer = MODELS.build(dict(type='RoIPool', output_size=3, spatial_scale=0.25))
    torch.testing.assert_close(layer(feat, rois), roi_pool(feat, rois, (3, 3), 0.25))
    # One bin over cells [0..3] x [0..3] (box [0, 0, 3, 3] in feature pixels) is their max.
    out = RoIPool(1)(feat, torch.tensor([[0, 0., 0., 3., 3.]]))
    torch.testing.assert_close(out[0, :, 0, 0], feat[0, :, :4, :4].amax(dim=(1, 2)))


def test_roi_ops_dtype_and_errors():
    feat = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    rois = torch.tensor([[0, 1., 1., 6., 6.]])  # float32 rois with float64 features
    assert RoIAlign(2)(feat, rois).dtype == torch.float64
    assert RoIPool(2)(feat, rois).dtype == torch.float64
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = RoIAlign(2)(feat.float().bfloat16(), rois)
    assert out.shape == (1, 2, 2, 2)
    with pytest.raises(NotImplementedError, match='average'):
        RoIAlign(7, pool_mode='max')
    with pytest.raises(ValueError, match='rois'):
        RoIAlign(7)(feat, torch.zeros(3, 4))
