"""DeltaXYWHBBoxCoder: a worked example, round trips, clamping, clipping, class-specific deltas."""
import math

import pytest
import torch

from rcnn_plugins.models.task_modules import DeltaXYWHBBoxCoder
from rcnn_plugins.registry import TASK_UTILS


def test_worked_example():
    coder = TASK_UTILS.build(dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                  target_stds=[0.1, 0.1, 0.2, 0.2]))
    prior = torch.tensor([[0., 0., 10., 10.]])
    gt = torch.tensor([[1., 2., 13., 12.]])
    # prior centre (5, 5), size 10 x 10; gt centre (7, 7), size 12 x 10:
    # dx = (7 - 5) / 10 = 0.2, dy = 0.2, dw = log(12 / 10), dh = log(1) = 0;
    # divided by stds: (2.0, 2.0, log(1.2) / 0.2 = 0.91161, 0).
    expected = torch.tensor([[2.0, 2.0, math.log(1.2) / 0.2, 0.0]])
    deltas = coder.encode(prior, gt)
    torch.testing.assert_close(deltas, expected)
    torch.testing.assert_close(coder.decode(prior, deltas), gt)


def test_means_are_subtracted():
    coder = DeltaXYWHBBoxCoder(target_means=(0.1, -0.1, 0., 0.5), target_stds=(1., 1., 1., 1.))
    d = coder.encode(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[1., 2., 13., 12.]]))
    torch.testing.assert_close(d, torch.tensor([[0.2 - 0.1, 0.2 + 0.1, math.log(1.2), -0.5]]))


def test_round_trip_random_with_batch_dims():
    g = torch.Generator().manual_seed(0)
    coder = DeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2))

    def boxes(*shape):
        xy = torch.rand(*shape, 2, generator=g) * 500
        return torch.cat([xy, xy + torch.rand(*shape, 2, generator=g) * 200 + 10], -1)  # size ratio < 62.5

    priors, gts = boxes(2, 50), boxes(2, 50)
    deltas = coder.encode(priors, gts)
    assert deltas.shape == (2, 50, 4)
    torch.testing.assert_close(coder.decode(priors, deltas), gts, atol=1e-3, rtol=1e-5)


def test_class_specific_deltas():
    coder = DeltaXYWHBBoxCoder()
    priors = torch.tensor([[0., 0., 10., 10.], [10., 10., 30., 20.]])
    # class 0: no change; class 1: shift by half a width right; class 2: double the width.
    per_class = torch.tensor([[0., 0., 0., 0.], [0.5, 0., 0., 0.], [0., 0., math.log(2), 0.]])
    deltas = per_class.reshape(1, 12).repeat(2, 1)
    out = coder.decode(priors, deltas)
    assert out.shape == (2, 12)
    out = out.reshape(2, 3, 4)
    torch.testing.assert_close(out[:, 0], priors)
    torch.testing.assert_close(out[0, 1], torch.tensor([5., 0., 15., 10.]))
    torch.testing.assert_close(out[1, 1], torch.tensor([20., 10., 40., 20.]))
    torch.testing.assert_close(out[0, 2], torch.tensor([-5., 0., 15., 10.]))
    # Same result as decoding each class on its own.
    for c in range(3):
        torch.testing.assert_close(out[:, c], coder.decode(priors, deltas[:, 4 * c:4 * c + 4]))


def test_wh_ratio_clamp():
    coder = DeltaXYWHBBoxCoder()
    prior = torch.tensor([[0., 0., 10., 10.]])
    out = coder.decode(prior, torch.tensor([[0., 0., 100., -100.]]))
    # dw clamped to |log(0.016)|: w = 10 * exp(|log 0.016|) = 10 / 0.016 = 625; dh to -|log 0.016|: h = 0.16.
    w, h = out[0, 2] - out[0, 0], out[0, 3] - out[0, 1]
    torch.testing.assert_close(w, torch.tensor(625.))
    torch.testing.assert_close(h, torch.tensor(0.16))
    torch.testing.assert_close((out[0, :2] + out[0, 2:]) / 2, torch.tensor([5., 5.]))
    # A custom wh_ratio_clip.
    out = coder.decode(prior, torch.tensor([[0., 0., 100., 0.]]), wh_ratio_clip=0.5)
    torch.testing.assert_close(out[0, 2] - out[0, 0], torch.tensor(20.))


def test_ctr_clamp():
    coder = DeltaXYWHBBoxCoder(add_ctr_clamp=True, ctr_clamp=32)
    prior = torch.tensor([[0., 0., 100., 100.]])
    out = coder.decode(prior, torch.tensor([[1., -1., -100., 0.]]))
    # centre shift 100 px clamped to 32; dw only clamped from above: w = 100 * e^-100 ~ 0.
    torch.testing.assert_close((out[0, :2] + out[0, 2:]) / 2, torch.tensor([82., 18.]))
    assert (out[0, 2] - out[0, 0]).item() < 1e-6


def test_clip_to_max_shape():
    prior = torch.tensor([[0., 0., 10., 10.]])
    deltas = torch.tensor([[-1., 3., 0., 0.]])  # moves to x in [-10, 0], y in [30, 40]
    out = DeltaXYWHBBoxCoder().decode(prior, deltas, max_shape=(35, 50))
    torch.testing.assert_close(out, torch.tensor([[0., 30., 0., 35.]]))
    unclipped = DeltaXYWHBBoxCoder(clip_border=False).decode(prior, deltas, max_shape=(35, 50))
    torch.testing.assert_close(unclipped, torch.tensor([[-10., 30., 0., 40.]]))
    # Per-image shapes with a batch dim.
    priors = prior.expand(2, 1, 4)
    out = DeltaXYWHBBoxCoder().decode(priors, deltas.expand(2, 1, 4), max_shape=[(35, 50), (100, 100)])
    torch.testing.assert_close(out, torch.tensor([[[0., 30., 0., 35.]], [[0., 30., 0., 40.]]]))


def test_empty_and_bad_shapes():
    coder = DeltaXYWHBBoxCoder()
    assert coder.decode(torch.zeros(0, 4), torch.zeros(0, 8)).shape == (0, 8)
    assert coder.encode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    with pytest.raises(ValueError, match='pred_bboxes'):
        coder.decode(torch.zeros(3, 4), torch.zeros(3, 6))
    with pytest.raises(ValueError, match='same shape'):
        coder.encode(torch.zeros(3, 4), torch.zeros(2, 4))


def test_max_shape_as_tensor():
    """MMDetection accepts one shape as a 1-D tensor (``torch.Tensor((32, 32))``), also (h, w, c),
    for every box, and per-image (B, 3) tensors (img_shape with channels)."""
    coder = DeltaXYWHBBoxCoder()
    priors = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.]])
    # Box 0 moves to x [-10, 0], y [30, 40]; box 1 grows 4x around (25, 25): [5, 5, 45, 45].
    deltas = torch.tensor([[-1., 3., 0., 0.], [0., 0., math.log(4), math.log(4)]])
    expected = torch.tensor([[0., 30., 0., 32.], [5., 5., 40., 32.]])  # clipped to h = 32, w = 40
    torch.testing.assert_close(coder.decode(priors, deltas, max_shape=torch.Tensor((32, 40))), expected)
    torch.testing.assert_close(coder.decode(priors, deltas, max_shape=torch.tensor([32, 40, 3])), expected)
    torch.testing.assert_close(coder.decode(priors, deltas, max_shape=(32, 40)), expected)
    # Per image with a batch dim: image 1 is 100 x 100, nothing to clip there but x1 = -10.
    out = coder.decode(priors.expand(2, 2, 4), deltas.expand(2, 2, 4),
                       max_shape=torch.tensor([[32, 40, 3], [100, 100, 3]]))
    torch.testing.assert_close(out, torch.stack([expected, torch.tensor([[0., 30., 0., 40.], [5., 5., 45., 45.]])]))
