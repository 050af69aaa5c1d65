"""HRFPN: MMDetection's key layout (no norm layers), sizes per level and a case computed by hand."""
import torch
import torch.nn.functional as F

from rcnn_plugins.models.necks import HRFPN
from rcnn_plugins.registry import MODELS


def test_keys_and_shapes():
    neck = MODELS.build(dict(type='HRFPN', in_channels=[4, 8, 16, 32], out_channels=8,
                             norm_cfg=dict(type='BN')))
    assert set(neck.state_dict()) == {'reduction_conv.conv.weight', 'reduction_conv.conv.bias'} | {
        f'fpn_convs.{i}.conv.{p}' for i in range(5) for p in ('weight', 'bias')}
    assert neck.reduction_conv.conv.weight.shape == (8, 60, 1, 1)
    xs = [torch.randn(1, c, 32 // 2 ** i, 48 // 2 ** i) for i, c in enumerate([4, 8, 16, 32])]
    outs = neck(xs)
    assert [tuple(o.shape) for o in outs] == [(1, 8, 32 // 2 ** i, 48 // 2 ** i) for i in range(5)]


def _passthrough(neck):
    with torch.no_grad():
        for p in neck.parameters():
            p.zero_()
        neck.reduction_conv.conv.weight.fill_(1.0)  # sum of the concatenated branches
        for m in neck.fpn_convs:
            m.conv.weight[0, 0, 1, 1] = 1.0


def test_by_hand():
    neck = HRFPN([1, 1], 1, num_outs=3)
    _passthrough(neck)
    x0 = torch.arange(16.).view(1, 1, 4, 4)
    x1 = torch.full((1, 1, 2, 2), 10.0)  # a constant map stays constant under bilinear upsampling
    with torch.no_grad():
        p0, p1, p2 = neck([x0, x1])
    assert torch.equal(p0[0, 0], x0[0, 0] + 10)
    # level 1: 2x2 average of p0: block means of 0..15 (+10)
    assert torch.equal(p1[0, 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]) + 10)
    assert torch.equal(p2[0, 0], torch.tensor([[7.5 + 10]]))
    neck_max = HRFPN([1, 1], 1, num_outs=2, pooling_type='MAX')
    _passthrough(neck_max)
    with torch.no_grad():
        assert torch.equal(neck_max([x0, x1])[1][0, 0], torch.tensor([[5., 7.], [13., 15.]]) + 10)


def test_with_cp_same_gradients():
    torch.manual_seed(0)
    a = HRFPN([2, 4], 4, num_outs=2)
    b = HRFPN([2, 4], 4, num_outs=2, with_cp=True)
    b.load_state_dict(a.state_dict())
    xs = [torch.randn(1, 2, 8, 8, requires_grad=True), torch.randn(1, 4, 4, 4, requires_grad=True)]
    for m in (a, b):
        sum(o.square().sum() for o in m(xs)).backward()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad)
