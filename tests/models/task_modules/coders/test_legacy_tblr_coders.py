"""LegacyDeltaXYWHBBoxCoder (+1 pixel convention) and TBLRBBoxCoder on hand cases and round trips."""
import math

import pytest
import torch

from rcnn_plugins.models.task_modules.coders import LegacyDeltaXYWHBBoxCoder, TBLRBBoxCoder


def test_legacy_encode_plus_one():
    coder = LegacyDeltaXYWHBBoxCoder()
    # prior [0,0,9,9]: 10 px wide with +1, centre 4.5; gt [0,0,19,19]: 20 px, centre 9.5.
    d = coder.encode(torch.tensor([[0., 0., 9., 9.]]), torch.tensor([[0., 0., 19., 19.]]))
    torch.testing.assert_close(d, torch.tensor([[0.5, 0.5, math.log(2), math.log(2)]]))
    d = LegacyDeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2)).encode(
        torch.tensor([[0., 0., 9., 9.]]), torch.tensor([[0., 0., 19., 19.]]))
    torch.testing.assert_close(d, torch.tensor([[5.0, 5.0, math.log(2) / 0.2, math.log(2) / 0.2]]))


def test_legacy_decode_hand_values():
    coder = LegacyDeltaXYWHBBoxCoder()
    rois = torch.tensor([[0., 0., 1., 1.], [0., 0., 1., 1.], [0., 0., 1., 1.], [5., 5., 5., 5.]])
    deltas = torch.tensor([[0., 0., 0., 0.], [1., 1., 1., 1.], [0., 0., 2., -1.], [0.7, -1.9, -0.5, 0.3]])
    # Row 1 by hand: centre 0.5, size 1 + 1 = 2 -> [-0.5, -0.5, 1.5, 1.5], clipped at 0.
    # Row 2: centre 0.5 + 2 * 1 = 2.5, size 2e -> x1 = 2.5 - e (clipped 0), x2 = 2.5 + e.
    e = math.e
    # Row 3: x: centre 0.5, size 2 e^2 -> x2 = 0.5 + e^2; y: size 2 / e -> 0.5 -+ 1 / e.
    # Row 4: prior size 1, centre 5: x: 5.7 -+ e^-0.5 / 2, y: 3.1 -+ e^0.3 / 2.
    expected = torch.tensor([[0., 0., 1.5, 1.5], [0., 0., 2.5 + e, 2.5 + e],
                             [0., 0.5 - 1 / e, 0.5 + e ** 2, 0.5 + 1 / e],
                             [5.7 - math.exp(-0.5) / 2, 3.1 - math.exp(0.3) / 2,
                              5.7 + math.exp(-0.5) / 2, 3.1 + math.exp(0.3) / 2]])
    torch.testing.assert_close(coder.decode(rois, deltas, max_shape=(32, 32)), expected, atol=1e-4, rtol=1e-4)
    # Clipping bound is w - 1 / h - 1.
    big = coder.decode(torch.tensor([[0., 0., 30., 30.]]), torch.tensor([[0., 0., 1., 1.]]), max_shape=(20, 25))
    assert big.tolist() == [[0., 0., 24., 19.]]
    # Per-class deltas (N, 4 * C) decode each class against the same prior.
    two = coder.decode(rois, deltas.repeat(1, 2), max_shape=(32, 32))
    torch.testing.assert_close(two, expected.repeat(1, 2), atol=1e-4, rtol=1e-4)


def test_tblr_hand_case_and_round_trip():
    coder = TBLRBBoxCoder()
    # prior [0,0,10,20]: centre (5, 10); gt [2,5,9,18]: top 5/20, bottom 8/20, left 3/10, right 4/10; / 4.
    enc = coder.encode(torch.tensor([[0., 0., 10., 20.]]), torch.tensor([[2., 5., 9., 18.]]))
    torch.testing.assert_close(enc, torch.tensor([[0.0625, 0.1, 0.075, 0.1]]))
    torch.testing.assert_close(coder.decode(torch.tensor([[0., 0., 10., 20.]]), enc), torch.tensor([[2., 5., 9., 18.]]))
    per_side = TBLRBBoxCoder(normalizer=[1., 2., 1., 2.])
    torch.testing.assert_close(per_side.encode(torch.tensor([[0., 0., 10., 20.]]), torch.tensor([[2., 5., 9., 18.]])),
                               torch.tensor([[0.25, 0.2, 0.3, 0.2]]))
    # Batched (B, N, 4) with per-image max_shape.
    priors = torch.tensor([[[0., 0., 10., 20.]], [[0., 0., 10., 20.]]])
    # tblr 0.25 * normalizer 4 = 1 prior side: [5-10, 10-20, 5+10, 10+20] = [-5, -10, 15, 30], then clipped.
    out = coder.decode(priors, torch.full((2, 1, 4), 0.25), max_shape=[(15, 12), (40, 40)])
    assert out.tolist() == [[[0., 0., 12., 15.]], [[0., 0., 15., 30.]]]
    with pytest.raises(AssertionError):
        coder.decode(priors, torch.ones(2, 1, 4), max_shape=[(15, 12), (40, 40), (1, 1)])


def test_max_shape_as_tensor():
    # The post-processing passes (h, w) as a float tensor.
    coder = LegacyDeltaXYWHBBoxCoder()
    out = coder.decode(torch.tensor([[0., 0., 30., 30.]]), torch.tensor([[0., 0., 1., 1.]]),
                       max_shape=torch.tensor([20., 25.]))
    assert out.tolist() == [[0., 0., 24., 19.]]
