"""PAFPN: MMDetection's key layout and sizes, and the bottom-up path on a case computed by hand."""
import math

import torch

from rcnn_plugins.models.necks import PAFPN
from rcnn_plugins.registry import MODELS


def _identity(module):
    """A ConvModule whose conv passes its (single-channel) input through: centre tap 1, bias 0."""
    w = module.conv.weight
    with torch.no_grad():
        w.zero_()
        w[:, :, w.shape[2] // 2, w.shape[3] // 2] = 1.0
        module.conv.bias.zero_()


def test_keys_and_shapes_of_the_zoo_config():
    neck = MODELS.build(dict(type='PAFPN', in_channels=[16, 32, 64, 128], out_channels=8, num_outs=5))
    keys = set(neck.state_dict())
    for kind, n in (('lateral_convs', 4), ('fpn_convs', 4), ('downsample_convs', 3), ('pafpn_convs', 3)):
        assert {f'{kind}.{i}.conv.weight' for i in range(n)} <= keys
        assert f'{kind}.{n}.conv.weight' not in keys
    assert neck.downsample_convs[0].conv.stride == (2, 2)
    h, w = 65, 97
    xs = [torch.randn(1, c, math.ceil(h / 2 ** (i + 2)), math.ceil(w / 2 ** (i + 2)))
          for i, c in enumerate([16, 32, 64, 128])]
    outs = neck(xs)
    assert [tuple(o.shape) for o in outs] == [
        (1, 8, math.ceil(h / s), math.ceil(w / s)) for s in (4, 8, 16, 32, 64)]


def test_bottom_up_path_by_hand():
    neck = PAFPN([1, 1], 1, num_outs=3)
    for m in list(neck.lateral_convs) + list(neck.fpn_convs) + list(neck.downsample_convs) + list(neck.pafpn_convs):
        _identity(m)
    x0 = torch.arange(16.).view(1, 1, 4, 4)
    x1 = torch.tensor([[100., 200.], [300., 400.]]).view(1, 1, 2, 2)
    with torch.no_grad():
        p0, p1, p2 = neck([x0, x1])
    # top-down: P0 = x0 + nearest(x1); bottom-up: P1 = x1 + P0 subsampled by the stride-2 identity conv.
    up = torch.tensor([[100., 100., 200., 200.], [100., 100., 200., 200.],
                       [300., 300., 400., 400.], [300., 300., 400., 400.]])
    expected0 = x0[0, 0] + up
    assert torch.equal(p0[0, 0], expected0)
    expected1 = x1[0, 0] + expected0[::2, ::2]  # [[100+100, 200+202], [300+308, 400+410]]
    assert torch.equal(p1[0, 0], torch.tensor([[200., 402.], [608., 810.]]))
    assert torch.equal(p1[0, 0], expected1)
    assert torch.equal(p2[0, 0], torch.tensor([[200.]]))  # extra level: stride-2 subsampling of P1


def test_extra_convs_on_output():
    neck = PAFPN([4, 8], 4, num_outs=4, add_extra_convs='on_output', relu_before_extra_convs=True)
    outs = neck([torch.randn(2, 4, 16, 12), torch.randn(2, 8, 8, 6)])
    assert [tuple(o.shape[2:]) for o in outs] == [(16, 12), (8, 6), (4, 3), (2, 2)]
    assert len(neck.fpn_convs) == 4
