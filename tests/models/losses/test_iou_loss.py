"""IoU-family box losses against torchvision's own box losses and hand values; MMDetection's
weight / avg_factor / reduction semantics; finite gradients on the zero-weight degenerate boxes
the heads pass for negatives."""
import math

import pytest
import torch
from torchvision.ops import box_iou, complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou_loss

from rcnn_plugins.models.losses import BoundedIoULoss, CIoULoss, DIoULoss, GIoULoss, IoULoss
from rcnn_plugins.registry import MODELS

EPS = torch.finfo(torch.float32).eps


def random_pairs(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50
    wh = torch.rand(n, 2, generator=g) * 30 + 1
    pred = torch.cat([xy, xy + wh], 1)
    shift = (torch.rand(n, 4, generator=g) - 0.5) * 20
    target = pred + shift
    target[:, 2:] = torch.max(target[:, 2:], target[:, :2] + 0.5)  # keep targets valid
    return pred, target


@pytest.mark.parametrize('ours, theirs', [(GIoULoss, generalized_box_iou_loss), (DIoULoss, distance_box_iou_loss)])
def test_against_torchvision(ours, theirs):
    pred, target = random_pairs()
    torch.testing.assert_close(ours(reduction='none')(pred, target), theirs(pred, target, reduction='none'),
                               atol=1e-4, rtol=1e-4)
    # Disjoint boxes still have a loss above 1 and a gradient.
    p = torch.tensor([[0., 0., 2., 2.]], requires_grad=True)
    t = torch.tensor([[4., 4., 6., 6.]])
    out = ours()(p, t)
    torch.testing.assert_close(out, theirs(p.detach(), t, reduction='mean'), atol=1e-5, rtol=1e-5)
    assert out.item() > 1
    out.backward()
    assert p.grad.abs().sum() > 0


def test_ciou_against_torchvision():
    pred, target = random_pairs()
    ours = CIoULoss(reduction='none')(pred, target)
    tv = complete_box_iou_loss(pred, target, reduction='none')
    iou = box_iou(pred, target).diagonal()
    high = iou > 0.5
    assert high.any() and (~high).any()
    # IoU > 0.5: the full CIoU; at or below: MMDetection drops the aspect term (alpha = 0), i.e. DIoU.
    torch.testing.assert_close(ours[high], tv[high], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours[~high], distance_box_iou_loss(pred, target, reduction='none')[~high],
                               atol=1e-4, rtol=1e-4)


def test_iou_loss_modes_hand_case():
    # [0,0,4,4] vs [2,0,6,4]: overlap 8, union 24 -> IoU 1/3.
    p, t = torch.tensor([[0., 0., 4., 4.]]), torch.tensor([[2., 0., 6., 4.]])
    assert IoULoss()(p, t).item() == pytest.approx(math.log(3), rel=1e-5)
    assert IoULoss(mode='linear')(p, t).item() == pytest.approx(2 / 3, rel=1e-5)
    assert IoULoss(mode='square')(p, t).item() == pytest.approx(1 - 1 / 9, rel=1e-5)
    with pytest.warns(DeprecationWarning):
        assert IoULoss(linear=True).mode == 'linear'
    # Disjoint: IoU clamped to eps, so -log(eps), finite.
    far = IoULoss(eps=1e-6)(p, torch.tensor([[10., 10., 12., 12.]]))
    assert far.item() == pytest.approx(-math.log(1e-6), rel=1e-5)
    # Against torchvision's box_iou on random pairs.
    pred, target = random_pairs()
    iou = box_iou(pred, target).diagonal().clamp(min=1e-6)
    torch.testing.assert_close(IoULoss(reduction='none')(pred, target), -iou.log(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('cls', [IoULoss, GIoULoss, DIoULoss, CIoULoss])
def test_weight_avg_factor_reduction(cls):
    pred, target = random_pairs(8)
    per = cls(reduction='none')(pred, target)
    w = torch.tensor([1., 0., 2., 1., 0., 0., 3., 1.])
    loss = cls(loss_weight=2.0)
    torch.testing.assert_close(loss(pred, target, w, avg_factor=5), 2.0 * (per * w).sum() / (5 + EPS))
    torch.testing.assert_close(loss(pred, target, w, reduction_override='sum'), 2.0 * (per * w).sum())
    torch.testing.assert_close(loss(pred, target, reduction_override='mean'), 2.0 * per.mean())
    # A (N, 4) weight is averaged over its columns (the heads pass (N, 4) box weights).
    w4 = torch.stack([w, w, w * 0, w], 1)
    torch.testing.assert_close(loss(pred, target, w4, reduction_override='sum'), 2.0 * (per * w * 0.75).sum())
    with pytest.raises(ValueError, match='avg_factor'):
        loss(pred, target, avg_factor=3, reduction_override='sum')


@pytest.mark.parametrize('cls', [IoULoss, GIoULoss, DIoULoss, CIoULoss, BoundedIoULoss])
def test_zero_weight_degenerate_targets_give_zero_and_finite_grads(cls):
    # What AnchorHead/BBoxHead pass with reg_decoded_bbox=True: decoded boxes for every prior,
    # all-zero targets with weight 0 for the negatives.
    pred = torch.tensor([[0., 0., 4., 4.], [1., 1., 3., 9.], [5., 5., 5.5, 5.5]], requires_grad=True)
    target = torch.tensor([[1., 0., 5., 4.], [0., 0., 0., 0.], [0., 0., 0., 0.]])
    weight = torch.tensor([[1.] * 4, [0.] * 4, [0.] * 4])
    out = cls()(pred, target, weight, avg_factor=1)
    expected = cls(reduction='sum')(pred[:1].detach(), target[:1], weight[:1])
    torch.testing.assert_close(out.detach(), expected / (1 + EPS))
    out.backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad[1:] == 0).all() and pred.grad[0].abs().sum() > 0
    # No positives at all: 0, connected to the graph; no boxes at all: 0 too (not mean([]) = NaN).
    none = cls()(pred, target, torch.zeros(3, 4))
    assert none.item() == 0 and none.requires_grad
    empty = cls()(torch.zeros(0, 4, requires_grad=True), torch.zeros(0, 4))
    assert empty.item() == 0 and empty.requires_grad


def test_bounded_iou_paper_formula_hand_case():
    # pred centre (7, 5), target (5, 5), both 10 x 10: only x is off, by 2.
    # Paper: IoU_B(dx) = max(0, (w - 2|dx|) / (w + 2|dx|)) = 6/14; cost 1 - 6/14 = 8/14.
    # Smooth L1 with beta 0.2: 8/14 >= beta -> 8/14 - 0.1. Widths equal -> cost 0.
    loss = BoundedIoULoss(beta=0.2, eps=1e-9, reduction='none')
    out = loss(torch.tensor([[2., 0., 12., 10.]]), torch.tensor([[0., 0., 10., 10.]]))
    torch.testing.assert_close(out, torch.tensor([[8 / 14 - 0.1, 0., 0., 0.]]))
    # Width 8 vs 10 at the same centre: cost 1 - min(8/10, 10/8) = 0.2 < beta 0.25 -> 0.5 * 0.04 / 0.25.
    loss = BoundedIoULoss(beta=0.25, eps=1e-9, reduction='none')
    out = loss(torch.tensor([[1., 0., 9., 10.]]), torch.tensor([[0., 0., 10., 10.]]))
    torch.testing.assert_close(out, torch.tensor([[0., 0., 0.5 * 0.04 / 0.25, 0.]]))
    # Gradient flows into pred only (targets are constants of the bound).
    p = torch.tensor([[2., 0., 12., 10.]], requires_grad=True)
    t = torch.tensor([[0., 0., 10., 10.]], requires_grad=True)
    BoundedIoULoss()(p, t).backward()
    assert p.grad.abs().sum() > 0 and t.grad is None


def test_build_from_registry_with_mmdet_defaults():
    assert MODELS.build(dict(type='IoULoss')).mode == 'log'
    assert MODELS.build(dict(type='GIoULoss', loss_weight=10.0)).loss_weight == 10.0
    b = MODELS.build(dict(type='BoundedIoULoss'))
    assert (b.beta, b.eps) == (0.2, 1e-3)
    assert CIoULoss().eps == 1e-6 and DIoULoss().eps == 1e-6
