"""FCOSHead: targets on a hand-made gt layout (levels, regress ranges, centre sampling, ambiguity),
losses against torchvision's focal loss and the paper's centerness, proposals as a two-stage RPN."""
import math

import pytest
import torch
from mmengine.structures import InstanceData
from torchvision.ops import sigmoid_focal_loss

from rcnn_plugins.models.dense_heads import FCOSHead
from rcnn_plugins.models.dense_heads.fcos_head import centerness_target
from rcnn_plugins.models.detectors.base import objectness_samples
from rcnn_plugins.structures import DetDataSample

# Strides 8 and 16 on a 32 x 32 image: level 0 has the 4 x 4 points {4, 12, 20, 28}^2, level 1 the
# 2 x 2 points {8, 24}^2 (index = row * width + column).
A = [0., 0., 14., 14.]    # label 1, area 196: level-0 points 0, 1, 4, 5 (largest distance <= 12)
B = [2., 2., 31., 31.]    # label 2: every level-0 distance set reaches > 16; all 4 level-1 points
C = [0., 0., 22., 14.]    # label 3, area 308: covers level-0 points 1 and 5 too, but A is smaller


def make_head(**kwargs):
    cfg = dict(num_classes=4, in_channels=8, feat_channels=8, stacked_convs=1, strides=[8, 16],
               regress_ranges=((-1, 16), (16, 1e8)), norm_cfg=dict(type='GN', num_groups=4),
               test_cfg=dict(nms_pre=1000, min_bbox_size=-1, nms=dict(type='nms', iou_threshold=0.7),
                             max_per_img=5))
    cfg.update(kwargs)
    return FCOSHead(**cfg)


def gts():
    return [InstanceData(bboxes=torch.tensor([A, B, C]), labels=torch.tensor([1, 2, 3])),
            InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))]


def targets(head):
    points = head.prior_generator.grid_priors([(4, 4), (2, 2)])
    return head.get_targets(points, gts())


def test_targets_by_hand():
    labels, boxes = targets(make_head())
    bg = 4
    # Per level, image 0 then image 1 (no gt: all background).
    assert labels[0].tolist() == [1, 1, bg, bg, 1, 1] + [bg] * 10 + [bg] * 16
    # Point (8, 8) lies in A and C too, but their largest distances (8, 14) are below level 1's 16.
    assert labels[1].tolist() == [2, 2, 2, 2] + [bg] * 4
    # (l, t, r, b) of point (12, 12) to A, and of point (8, 8) to B.
    assert boxes[0][5].tolist() == [12., 12., 2., 2.]
    assert boxes[1][0].tolist() == [6., 6., 23., 23.]
    assert boxes[0][16:].abs().sum() == 0


def test_centre_sampling_by_hand():
    # Radius 0.5 stride: A's region is (3, 11)^2 at level 0 -> point 0 only; point 1 (12, 4) falls in
    # C's region (7, 15) x (3, 11) and goes to C; B's region (8.5, 24.5)^2 at level 1 -> point 3 only.
    labels, _ = targets(make_head(center_sampling=True, center_sample_radius=0.5))
    bg = 4
    assert labels[0][:16].tolist() == [1, 3] + [bg] * 14
    assert labels[1][:4].tolist() == [bg, bg, bg, 2]
    # A radius of 1.5 strides covers these small boxes entirely: the same as no sampling.
    wide, _ = targets(make_head(center_sampling=True))
    plain, _ = targets(make_head())
    assert all(torch.equal(w, p) for w, p in zip(wide, plain))


def test_norm_on_bbox_targets_are_in_strides():
    _, boxes = targets(make_head(norm_on_bbox=True))
    assert boxes[0][5].tolist() == [1.5, 1.5, .25, .25]
    assert boxes[1][0].tolist() == [6 / 16, 6 / 16, 23 / 16, 23 / 16]


def test_centerness_formula():
    t = torch.tensor([[12., 12., 2., 2.], [6., 3., 6., 9.]])
    expected = [math.sqrt(2 / 12 * 2 / 12), math.sqrt(1 * 3 / 9)]
    assert centerness_target(t).tolist() == pytest.approx(expected)
    assert centerness_target(torch.zeros(0, 4)).shape == (0,)


def test_loss_values_and_gradients():
    torch.manual_seed(0)
    head = make_head()
    head.train()
    feats = [torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)]
    samples = []
    for gt in gts():
        s = DetDataSample(metainfo=dict(img_shape=(32, 32), pad_shape=(32, 32)))
        s.gt_instances = gt
        samples.append(s)
    losses = head.loss(feats, samples)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_centerness'}
    assert all(torch.isfinite(v) for v in losses.values())

    # The classification loss, independently: torchvision's focal loss over one-hot targets,
    # summed and divided by the 8 positives (4 of A at level 0, 4 of B at level 1).
    cls_scores, _, _ = head(feats)
    labels, _ = targets(head)
    flat = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, 4) for c in cls_scores])
    onehot = torch.nn.functional.one_hot(torch.cat(labels), 5)[:, :4].float()
    expected = sigmoid_focal_loss(flat, onehot, alpha=0.25, gamma=2.0, reduction='sum') / 8
    torch.testing.assert_close(losses['loss_cls'], expected)

    sum(losses.values()).backward()
    for name in ('conv_cls.weight', 'conv_reg.weight', 'conv_centerness.weight', 'scales.0.scale',
                 'cls_convs.0.conv.weight'):
        grad = dict(head.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_loss_without_gt_is_zero_but_connected():
    head = make_head()
    s = DetDataSample(metainfo=dict(img_shape=(32, 32)))
    s.gt_instances = gts()[1]
    losses = head.loss([torch.randn(1, 8, 4, 4), torch.randn(1, 8, 2, 2)], [s])
    assert losses['loss_bbox'] == 0 and losses['loss_centerness'] == 0 and losses['loss_cls'] > 0
    assert losses['loss_bbox'].requires_grad


def test_proposals_as_an_rpn():
    torch.manual_seed(0)
    head = make_head(num_classes=1)
    head.eval()
    feats = [torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)]
    metas = [DetDataSample(metainfo=dict(img_shape=(32, 32), scale_factor=(2., 2.))) for _ in range(2)]
    with torch.no_grad():
        results = head.predict(feats, metas)
        cls_scores, _, centernesses = head(feats)
    for i, res in enumerate(results):
        assert res.bboxes.shape[1] == 4 and 0 < len(res) <= 5
        assert (res.bboxes >= 0).all() and (res.bboxes <= 32).all()
        assert (res.scores[:-1] >= res.scores[1:]).all() and (res.labels == 0).all()
        # The best proposal's score: the best sigmoid(cls) * sigmoid(centerness) of all 20 points.
        best = max((c[i].sigmoid() * t[i].sigmoid()).max() for c, t in zip(cls_scores, centernesses))
        torch.testing.assert_close(res.scores[0], best)
    rescaled = head.predict(feats, metas, rescale=True)[0]
    torch.testing.assert_close(rescaled.bboxes * 2, results[0].bboxes)


def test_detector_relabels_gts_as_objects_for_the_rpn():
    s = DetDataSample(metainfo=dict(img_shape=(32, 32)))
    s.gt_instances = InstanceData(bboxes=torch.tensor([A]), labels=torch.tensor([7]))
    out = objectness_samples([s])[0]
    assert out.gt_instances.labels.tolist() == [0] and s.gt_instances.labels.tolist() == [7]
