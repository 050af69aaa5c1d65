"""BFP (Libra R-CNN): gather/scatter computed by hand, the refine options, mmcv's NonLocal2d layout."""
import pytest
import torch

from rcnn_plugins.models.necks import BFP
from rcnn_plugins.registry import MODELS


def _levels():
    x0 = torch.arange(16.).view(1, 1, 4, 4)
    x1 = torch.tensor([[1., -2.], [3., 5.]]).view(1, 1, 2, 2)
    x2 = torch.tensor([[7.]]).view(1, 1, 1, 1)
    return [x0, x1, x2]


def _bsf_by_hand():
    # x0 max-pooled over its 2x2 blocks: [[5, 7], [13, 15]]; x1 as is; x2 repeated; mean of the three.
    return (torch.tensor([[5., 7.], [13., 15.]]) + torch.tensor([[1., -2.], [3., 5.]]) + 7.) / 3


def test_gather_and_scatter_by_hand():
    bfp = BFP(1, 3, refine_level=1)
    xs = _levels()
    o0, o1, o2 = bfp(xs)
    bsf = _bsf_by_hand()
    assert torch.allclose(o1[0, 0], xs[1][0, 0] + bsf)
    assert torch.allclose(o0[0, 0], xs[0][0, 0] + bsf.repeat_interleave(2, 0).repeat_interleave(2, 1))
    assert torch.allclose(o2[0, 0], xs[2][0, 0] + bsf.max())


def test_conv_refine_is_a_relu_conv():
    bfp = BFP(1, 3, refine_level=1, refine_type='conv')
    with torch.no_grad():
        bfp.refine.conv.weight.zero_()
        bfp.refine.conv.weight[0, 0, 1, 1] = -1.0  # -bsf, then ReLU
        bfp.refine.conv.bias.fill_(10.0)
    xs = _levels()
    _, o1, _ = bfp(xs)
    assert torch.allclose(o1[0, 0], xs[1][0, 0] + torch.relu(10.0 - _bsf_by_hand()))


def test_non_local_refine_layout_and_formula():
    bfp = MODELS.build(dict(type='BFP', in_channels=8, num_levels=5, refine_level=2, refine_type='non_local'))
    bfp.init_weights()
    assert {'refine.g.conv.weight', 'refine.theta.conv.weight', 'refine.phi.conv.weight',
            'refine.conv_out.conv.weight'} <= set(bfp.state_dict())
    assert bfp.refine.g.conv.weight.shape == (8, 8, 1, 1)  # reduction=1
    torch.manual_seed(0)
    xs = [torch.randn(2, 8, 32 // 2 ** i, 24 // 2 ** i) for i in range(5)]
    # mmcv zero-initialises conv_out: a fresh non-local block is the identity.
    plain = BFP(8, 5, refine_level=2)
    for a, b in zip(bfp(xs), plain(xs)):
        torch.testing.assert_close(a, b)
    # Random weights: embedded Gaussian without scaling, y = x + W_out(softmax(theta^T phi) g).
    for p in bfp.parameters():
        p.data.normal_(0, 0.1)
    nl = bfp.refine
    bsf = torch.randn(2, 8, 8, 6)
    th, ph, g = (m(bsf).flatten(2) for m in (nl.theta, nl.phi, nl.g))
    attn = torch.softmax(th.transpose(1, 2) @ ph, dim=-1)  # (B, HW, HW)
    y = (attn @ g.transpose(1, 2)).transpose(1, 2).reshape(2, 8, 8, 6)
    torch.testing.assert_close(nl(bsf), bsf + nl.conv_out(y), rtol=1e-5, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match='refine_type'):
        BFP(8, 5, refine_type='attention')
    with pytest.raises(ValueError, match='refine_level'):
        BFP(8, 3, refine_level=3)
    with pytest.raises(ValueError, match='num_levels=3'):
        BFP(1, 3)(_levels()[:2])
