"""GridHead: heatmap targets of a hand-made box (against a slow per-cell loop of the definition and a
point worked out by hand), heatmaps decoded back to the gt box, loss and gradients, and GridRoIHead
end to end on a tiny input."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.structures import InstanceData

from rcnn_plugins.models.roi_heads import GridHead, GridRoIHead
from rcnn_plugins.structures import DetDataSample

TINY = dict(in_channels=8, point_feat_channels=4, num_convs=2, norm_cfg=dict(type='GN', num_groups=4))


def reference_targets(head, pos, gt, radius):
    """The definition, one RoI / point / cell at a time."""
    size, g = head.whole_map_size, head.grid_size
    out = torch.zeros(len(pos), head.grid_points, size // 2, size // 2)
    for i, (p, t) in enumerate(zip(pos.tolist(), gt.tolist())):
        w, h = p[2] - p[0], p[3] - p[1]
        x1, y1, bw, bh = p[0] - w / 2, p[1] - h / 2, 2 * w, 2 * h
        if bw <= g or bh <= g:
            continue
        for j in range(head.grid_points):
            fx, fy = 1 - (j // g) / (g - 1), 1 - (j % g) / (g - 1)
            cx = int((fx * t[0] + (1 - fx) * t[2] - x1) / bw * size)
            cy = int((fy * t[1] + (1 - fy) * t[3] - y1) / bh * size)
            sx, sy = head.sub_regions[j][:2]
            for x in range(cx - radius, cx + radius + 1):
                for y in range(cy - radius, cy + radius + 1):
                    if (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2 and 0 <= x - sx < size // 2 \
                            and 0 <= y - sy < size // 2:
                        out[i, j, y - sy, x - sx] = 1
    return out


def test_sub_regions_of_the_3x3_grid():
    head = GridHead(**TINY)
    # 56x56 map, 28x28 windows starting at 0 (first column/row), int(0.25 * 56) = 14 (middle), 28 (last).
    assert head.sub_regions[0] == (0, 0, 28, 28)
    assert head.sub_regions[1] == (0, 14, 28, 42)  # column 0, row 1
    assert head.sub_regions[5] == (14, 28, 42, 56)  # column 1, row 2
    assert head.sub_regions[8] == (28, 28, 56, 56)


def test_targets_of_a_hand_made_box():
    head = GridHead(**TINY)
    pos = torch.tensor([[10., 10., 20., 20.], [0., 0., 1., 1.], [30., 5., 70., 25.]])
    gt = torch.tensor([[8., 12., 20., 20.], [0., 0., 1., 1.], [28., 6., 66., 30.]])
    res = SimpleNamespace(pos_bboxes=pos, pos_gt_bboxes=gt)
    targets = head.get_targets([res], dict(pos_radius=1))
    assert targets.shape == (3, 9, 28, 28)
    assert torch.equal(targets, reference_targets(head, pos, gt, 1))
    # By hand, RoI 0 enlarged to [5, 5, 25, 25]: point 1 (left edge, middle row) of the gt is (8, 16):
    # cell (int(3 / 20 * 56), int(11 / 20 * 56)) = (8, 30), in its window at (8, 30 - 14) = (8, 16).
    ones = targets[0, 1].nonzero().tolist()
    assert sorted(ones) == [[15, 8], [16, 7], [16, 8], [16, 9], [17, 8]]  # (y, x): a radius-1 cross
    assert targets[1].sum() == 0  # a RoI under grid_size pixels (enlarged) gets no target


def test_heatmaps_of_the_targets_decode_to_the_gt_box():
    head = GridHead(**TINY)
    pos = torch.tensor([[10., 10., 20., 20.], [30., 5., 70., 25.]])
    gt = torch.tensor([[8., 12., 20., 20.], [28., 6., 66., 30.]])
    targets = head.get_targets([SimpleNamespace(pos_bboxes=pos, pos_gt_bboxes=gt)], dict(pos_radius=0))
    logits = targets * 20 - 10
    res = InstanceData(bboxes=pos.clone())
    out = head.predict_by_feat(dict(fused=logits), [res], [dict(img_shape=(100, 100), scale_factor=(2., 2.))],
                               rescale=True)[0]
    # Within one map cell (2 * side / 56) of the gt, then divided by the scale factor.
    cell = (pos[:, 2:] - pos[:, :2]) * 2 / 56
    err = (out.bboxes * 2 - gt).abs()
    assert (err <= cell.repeat(1, 2)).all()


def test_loss_and_gradients():
    torch.manual_seed(0)
    head = GridHead(**TINY)
    head.init_weights()
    x = torch.randn(2, 8, 14, 14, requires_grad=True)
    pred = head(x)
    assert pred['fused'].shape == (2, 9, 28, 28) and pred['unfused'].shape == (2, 9, 28, 28)
    res = SimpleNamespace(pos_bboxes=torch.tensor([[10., 10., 20., 20.], [30., 5., 70., 25.]]),
                          pos_gt_bboxes=torch.tensor([[8., 12., 20., 20.], [28., 6., 66., 30.]]))
    loss = head.loss(pred, torch.tensor([1, 0]), [res], dict(pos_radius=1))['loss_grid']
    targets = head.get_targets([res], dict(pos_radius=1))[[1, 0]]
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert torch.allclose(loss, 15 * (bce(pred['fused'], targets) + bce(pred['unfused'], targets)))
    loss.backward()
    assert torch.isfinite(x.grad).all() and head.forder_trans[4][0][1].weight.grad.abs().sum() > 0
    head.eval()
    out = head(x.detach())
    assert out['unfused'] is out['fused']


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='square'):
        GridHead(**dict(TINY, grid_points=8))
    with pytest.raises(ValueError, match='num_groups'):
        GridHead(**dict(TINY, norm_cfg=dict(type='GN', num_groups=5)))


def test_grid_roi_head_end_to_end():
    torch.manual_seed(0)
    extractor = dict(type='SingleRoIExtractor', out_channels=8, featmap_strides=[4])
    head = GridRoIHead(
        bbox_roi_extractor=dict(extractor, roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)),
        bbox_head=dict(type='Shared2FCBBoxHead', with_reg=False, in_channels=8, fc_out_channels=16, num_classes=2),
        grid_roi_extractor=dict(extractor, roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0)),
        grid_head=dict(type='GridHead', **TINY),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5),
                       sampler=dict(type='RandomSampler', num=16, pos_fraction=0.25), pos_radius=1, max_num_grid=4),
        test_cfg=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=5))
    x = [torch.randn(1, 8, 16, 16)]
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), scale_factor=(0.5, 0.5)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[8., 8., 40., 44.]]), labels=torch.tensor([1]))
    proposals = [InstanceData(bboxes=torch.tensor([[6., 9., 38., 40.], [30., 30., 60., 60.], [9., 7., 41., 45.]]))]
    losses = head.loss(x, proposals, [sample])
    assert set(losses) == {'loss_cls', 'acc', 'loss_grid'} and torch.isfinite(losses['loss_grid'])
    (losses['loss_cls'] + losses['loss_grid']).backward()
    assert head.grid_head.deconv2.weight.grad.abs().sum() > 0
    head.eval()
    with torch.no_grad():
        det = head.predict(x, proposals, [sample], rescale=True)[0]
    assert det.bboxes.shape[1] == 4 and len(det) <= 5 and det.labels.max() < 2
    assert (det.bboxes >= 0).all() and (det.bboxes <= 128).all()  # original-image pixels (64 / 0.5)


def test_init_starts_the_heatmaps_at_probability_0_01():
    head = GridHead(**TINY)
    head.init_weights()
    # MMDetection's init: deconv2 bias -log(0.99 / 0.01), transposed convs N(0, 0.001).
    assert torch.allclose(head.deconv2.bias, torch.full((9,), -4.59512), atol=1e-4)
    assert abs(head.deconv1.weight.std().item() - 0.001) < 2e-4
