"""Losses: hand-computed values, weight / avg_factor / reduction semantics, accuracy."""
import math

import pytest
import torch

from rcnn_plugins.models.losses import (CrossEntropyLoss, L1Loss, SmoothL1Loss, accuracy, weight_reduce_loss)
from rcnn_plugins.registry import MODELS

EPS = torch.finfo(torch.float32).eps


def test_softmax_ce_hand_case():
    loss = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
    # -log softmax([2,1,0])[0] = log(1 + e^-1 + e^-2)
    out = loss(torch.tensor([[2., 1., 0.]]), torch.tensor([0]))
    torch.testing.assert_close(out, torch.tensor(math.log(1 + math.exp(-1) + math.exp(-2))))
    # label 2: log(e^2 + e^1 + e^0) - 0
    out = loss(torch.tensor([[2., 1., 0.]]), torch.tensor([2]))
    torch.testing.assert_close(out, torch.tensor(math.log(math.e ** 2 + math.e + 1)))


def test_softmax_ce_weight_avg_factor_class_weight_ignore():
    logits = torch.tensor([[2., 1., 0.], [0., 0., 0.], [1., 3., 0.]])
    labels = torch.tensor([0, 1, 2])
    per = [math.log(1 + math.exp(-1) + math.exp(-2)), math.log(3), math.log(math.e + math.e ** 3 + 1)]
    w = torch.tensor([1., 0., 2.])
    ce = CrossEntropyLoss(loss_weight=2.0)
    torch.testing.assert_close(ce(logits, labels, w, avg_factor=5),
                               torch.tensor(2.0 * (per[0] + 2 * per[2]) / (5 + EPS)))
    torch.testing.assert_close(ce(logits, labels, reduction_override='sum'), torch.tensor(2.0 * sum(per)))
    none = ce(logits, labels, reduction_override='none')
    torch.testing.assert_close(none, 2.0 * torch.tensor(per))
    # class_weight scales each sample's loss by the weight of its label.
    cw = CrossEntropyLoss(class_weight=[1., 2., 3.], reduction='none')
    torch.testing.assert_close(cw(logits, labels), torch.tensor([per[0], 2 * per[1], 3 * per[2]]))
    # ignore_index: ignored entries give 0; plain mean still divides by all 3, avg_non_ignore by 2.
    ign = CrossEntropyLoss(ignore_index=1)
    torch.testing.assert_close(ign(logits, labels), torch.tensor((per[0] + per[2]) / 3))
    ign = CrossEntropyLoss(ignore_index=1, avg_non_ignore=True)
    torch.testing.assert_close(ign(logits, labels), torch.tensor((per[0] + per[2]) / (2 + EPS)))


def test_sigmoid_bce_rpn_style_labels():
    # RPN: one logit per anchor, label 0 = foreground (class 0), label 1 = background (= num_classes).
    bce = CrossEntropyLoss(use_sigmoid=True)
    logits = torch.tensor([[0.5], [-1.0], [2.0]])
    labels = torch.tensor([0, 1, 0])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    per = [-math.log(sig(0.5)), -math.log(1 - sig(-1.0)), -math.log(sig(2.0))]
    torch.testing.assert_close(bce(logits, labels), torch.tensor(sum(per) / 3))
    w = torch.tensor([1., 1., 0.])
    torch.testing.assert_close(bce(logits, labels, w, avg_factor=2), torch.tensor((per[0] + per[1]) / (2 + EPS)))
    # Same-shape binary targets work too, and gradients flow.
    logits.requires_grad_(True)
    out = bce(logits, torch.tensor([[1.], [0.], [1.]]), reduction_override='sum')
    torch.testing.assert_close(out, torch.tensor(sum(per)))
    out.backward()
    torch.testing.assert_close(logits.grad[:, 0], torch.tensor([sig(0.5) - 1, sig(-1.0), sig(2.0) - 1]))


def test_sigmoid_bce_multiclass_onehot_and_ignore():
    bce = CrossEntropyLoss(use_sigmoid=True, reduction='none', ignore_index=-1)
    logits = torch.zeros(3, 2)
    out = bce(logits, torch.tensor([1, 2, -1]))  # class 1; background (2 = C); ignored
    l2 = math.log(2)
    torch.testing.assert_close(out, torch.tensor([[l2, l2], [l2, l2], [0., 0.]]))
    # class_weight is the positive-term weight per class.
    bce = CrossEntropyLoss(use_sigmoid=True, reduction='none', class_weight=[1., 3.])
    out = bce(torch.zeros(1, 2), torch.tensor([1]))
    torch.testing.assert_close(out, torch.tensor([[l2, 3 * l2]]))


def test_smooth_l1_piecewise():
    pred = torch.tensor([[0.5, 2.0, -0.2, 3.0]])
    target = torch.zeros(1, 4)
    sl1 = MODELS.build(dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
    # |x| < beta: 0.5 x^2 / beta; else |x| - 0.5 beta
    expected = torch.tensor([[0.125, 1.5, 0.02, 2.5]])
    torch.testing.assert_close(sl1(pred, target, reduction_override='none'), expected)
    torch.testing.assert_close(sl1(pred, target), expected.mean())
    # beta = 2.5: 0.5 / 2.5 * x^2 for 0.5, 2.0, -0.2; 3.0 - 1.25 for 3.0.
    sl1 = SmoothL1Loss(beta=2.5, loss_weight=3.0)
    expected = torch.tensor([[0.05, 0.8, 0.008, 1.75]])
    torch.testing.assert_close(sl1(pred, target, reduction_override='sum'), 3.0 * expected.sum())
    w = torch.tensor([[1., 0., 1., 1.]])
    torch.testing.assert_close(sl1(pred, target, w, avg_factor=4),
                               3.0 * (0.05 + 0.008 + 1.75) / (4 + EPS) * torch.tensor(1.))


def test_l1_and_empty():
    l1 = L1Loss(loss_weight=2.0)
    pred = torch.tensor([[1., -2., 3., 0.]], requires_grad=True)
    torch.testing.assert_close(l1(pred, torch.zeros(1, 4)), torch.tensor(2.0 * 6 / 4))
    # No boxes: 0 (not NaN), still connected to the graph.
    empty = torch.zeros(0, 4, requires_grad=True)
    out = L1Loss()(empty, torch.zeros(0, 4))
    assert out.item() == 0 and out.requires_grad
    out = SmoothL1Loss()(empty, torch.zeros(0, 4), avg_factor=0)
    assert out.item() == 0


def test_weight_reduce_loss_semantics():
    loss = torch.tensor([1., 2., 3.])
    w = torch.tensor([1., 0., 2.])
    torch.testing.assert_close(weight_reduce_loss(loss, w, 'mean'), torch.tensor(7 / 3))
    torch.testing.assert_close(weight_reduce_loss(loss, w, 'sum'), torch.tensor(7.))
    torch.testing.assert_close(weight_reduce_loss(loss, w, 'mean', avg_factor=2), torch.tensor(7 / (2 + EPS)))
    torch.testing.assert_close(weight_reduce_loss(loss, w, 'none', avg_factor=2), torch.tensor([1., 0., 6.]))
    # avg_factor 0 gives 0, not NaN (eps in the denominator).
    assert weight_reduce_loss(loss * 0, None, 'mean', avg_factor=0).item() == 0
    with pytest.raises(ValueError, match='avg_factor'):
        weight_reduce_loss(loss, w, 'sum', avg_factor=2)
    with pytest.raises(ValueError, match='reduction'):
        L1Loss(reduction='avg')
    with pytest.raises(ValueError, match='beta'):
        SmoothL1Loss(beta=0)
    with pytest.raises(NotImplementedError, match='use_mask'):
        CrossEntropyLoss(use_mask=True)


def test_accuracy():
    pred = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    target = torch.tensor([0, 2, 2, 1])
    # top-1 hits: rows 0 and 2 -> 50 %; top-2 adds rows 1 and 3 -> 100 %.
    acc = accuracy(pred, target)
    assert acc.shape == (1,)
    torch.testing.assert_close(acc, torch.tensor([50.]))
    top1, top2 = accuracy(pred, target, topk=(1, 2))
    torch.testing.assert_close(top2, torch.tensor([100.]))
    # thresh: row 2's 0.6 is not above 0.7, row 0's 0.9 is.
    torch.testing.assert_close(accuracy(pred, target, thresh=0.7), torch.tensor([25.]))
    torch.testing.assert_close(accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), torch.tensor([0.]))
    acc_mod = MODELS.build(dict(type='Accuracy', topk=1))
    torch.testing.assert_close(acc_mod(pred, target), torch.tensor([50.]))


def test_avg_factor_with_sum_raises_as_mmdetection():
    """MMDetection's weight_reduce_loss refuses avg_factor with reduction='sum' (a sum divided by
    something is a mean); every loss here raises the same ValueError, naming itself, even with no boxes."""
    pred, target = torch.tensor([[1., -2., 3., 0.]]), torch.zeros(1, 4)
    for loss in (L1Loss(reduction='sum'), SmoothL1Loss(reduction='sum')):
        name = type(loss).__name__
        with pytest.raises(ValueError, match=f'{name}: avg_factor can not be used with reduction="sum"'):
            loss(pred, target, avg_factor=2.)
        with pytest.raises(ValueError, match=name):
            loss(torch.zeros(0, 4), torch.zeros(0, 4), avg_factor=2.)
        with pytest.raises(ValueError, match=name):
            type(loss)()(pred, target, avg_factor=2., reduction_override='sum')
        torch.testing.assert_close(loss(pred, target), loss(pred, target, reduction_override='mean') * 4)
    torch.testing.assert_close(L1Loss()(pred, target, avg_factor=2.), torch.tensor(6 / (2 + EPS)))
    logits, labels = torch.tensor([[2., 0.], [0., 1.]]), torch.tensor([0, 1])
    for ce in (CrossEntropyLoss(reduction='sum'), CrossEntropyLoss(use_sigmoid=True, reduction='sum')):
        with pytest.raises(ValueError, match='CrossEntropyLoss: avg_factor can not be used'):
            ce(logits, labels, avg_factor=2.)
