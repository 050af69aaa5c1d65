"""FPN neck: MMDetection key layout, top-down pathway against a hand-written reference, extra levels."""
import math

import pytest
import torch
import torch.nn.functional as F

import rcnn_plugins.models.necks  # noqa: F401  (registers FPN)
from rcnn_plugins.models.necks import FPN
from rcnn_plugins.registry import MODELS

R50_CHANNELS = [256, 512, 1024, 2048]
SMALL = [16, 32, 64, 128]  # same structure, cheaper convs


def _inputs(h, w, channels=SMALL, batch=1, seed=0):
    """Backbone-like features at strides 4, 8, 16, 32 of an (h, w) image (ceil division, as convs do)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, math.ceil(h / 2**(i + 2)), math.ceil(w / 2**(i + 2)), generator=g)
            for i, c in enumerate(channels)]


def _randomize(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.data.copy_(torch.randn(p.shape, generator=g) * 0.05)


def _nearest(x, size):
    """Nearest resize by explicit index gather: out[i] = in[floor(i * in / out)]."""
    h, w = x.shape[-2:]
    rows = (torch.arange(size[0]) * h // size[0]).long()
    cols = (torch.arange(size[1]) * w // size[1]).long()
    return x[:, :, rows][:, :, :, cols]


def _conv(module, x, stride=1, padding=0):
    return F.conv2d(x, module.conv.weight, module.conv.bias, stride=stride, padding=padding)


def test_faster_rcnn_fpn_keys_and_param_count():
    fpn = MODELS.build(dict(type='FPN', in_channels=R50_CHANNELS, out_channels=256, num_outs=5))
    keys = list(fpn.state_dict())
    expected = [f'{kind}.{i}.conv.{p}' for kind in ('lateral_convs', 'fpn_convs') for i in range(4)
                for p in ('weight', 'bias')]
    assert keys == expected
    assert sum(p.numel() for p in fpn.parameters()) == 3_344_384
    # hand count: laterals 1x1 (c*256 + 256), outputs 3x3 (256*256*9 + 256)
    assert 3_344_384 == sum(c * 256 + 256 for c in R50_CHANNELS) + 4 * (256 * 256 * 9 + 256)


@pytest.mark.parametrize('h, w', [(64, 96), (100, 150)])
def test_shapes_and_top_down_against_reference(h, w):
    fpn = FPN(SMALL, 32, num_outs=5)
    _randomize(fpn)
    xs = _inputs(h, w)
    with torch.no_grad():
        outs = fpn(xs)
        lat = [_conv(fpn.lateral_convs[i], xs[i]) for i in range(4)]
        merged = [None] * 4
        merged[3] = lat[3]
        for i in (2, 1, 0):
            merged[i] = lat[i] + _nearest(merged[i + 1], lat[i].shape[-2:])
        ref = [_conv(fpn.fpn_convs[i], merged[i], padding=1) for i in range(4)]
    sizes = [(math.ceil(h / s), math.ceil(w / s)) for s in (4, 8, 16, 32, 64)]
    assert [tuple(o.shape) for o in outs] == [(1, 32) + s for s in sizes]
    for o, r in zip(outs[:4], ref):
        torch.testing.assert_close(o, r, atol=1e-4, rtol=1e-4)
    # P6 is stride-2 subsampling of P5 (max pool with a 1x1 kernel)
    assert torch.equal(outs[4], outs[3][:, :, ::2, ::2])


def test_upsample_scale_factor_cfg():
    fpn = FPN([8, 16], 4, num_outs=2, upsample_cfg=dict(scale_factor=2, mode='nearest'))
    _randomize(fpn)
    xs = [torch.randn(1, 8, 8, 10), torch.randn(1, 16, 4, 5)]
    with torch.no_grad():
        out = fpn(xs)
        top = _conv(fpn.lateral_convs[1], xs[1])
        up = top.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        ref0 = _conv(fpn.fpn_convs[0], _conv(fpn.lateral_convs[0], xs[0]) + up, padding=1)
    torch.testing.assert_close(out[0], ref0, atol=1e-5, rtol=1e-5)


def test_retinanet_on_input_extra_convs():
    fpn = FPN(SMALL, 32, num_outs=5, start_level=1, add_extra_convs='on_input',
              relu_before_extra_convs=True)
    _randomize(fpn)
    assert len(fpn.lateral_convs) == 3 and len(fpn.fpn_convs) == 5
    assert fpn.fpn_convs[3].conv.in_channels == 128 and fpn.fpn_convs[4].conv.in_channels == 32
    assert fpn.fpn_convs[3].conv.stride == (2, 2)
    xs = _inputs(128, 192)
    with torch.no_grad():
        outs = fpn(xs)
        p6 = _conv(fpn.fpn_convs[3], xs[3], stride=2, padding=1)
        p7 = _conv(fpn.fpn_convs[4], F.relu(p6), stride=2, padding=1)
    strides = (8, 16, 32, 64, 128)
    assert [tuple(o.shape[-2:]) for o in outs] == [(math.ceil(128 / s), math.ceil(192 / s)) for s in strides]
    torch.testing.assert_close(outs[3], p6, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(outs[4], p7, atol=1e-4, rtol=1e-4)
    # True is an alias of 'on_input'
    assert FPN(R50_CHANNELS, 256, num_outs=5, start_level=1, add_extra_convs=True).add_extra_convs == 'on_input'


@pytest.mark.parametrize('source', ['on_lateral', 'on_output'])
def test_extra_conv_sources(source):
    fpn = FPN([8, 16], 4, num_outs=3, add_extra_convs=source)
    _randomize(fpn)
    xs = [torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)]
    with torch.no_grad():
        outs = fpn(xs)
        lat1 = _conv(fpn.lateral_convs[1], xs[1])
        src = lat1 if source == 'on_lateral' else outs[1]
        ref = _conv(fpn.fpn_convs[2], src, stride=2, padding=1)
    assert fpn.fpn_convs[2].conv.in_channels == 4
    torch.testing.assert_close(outs[2], ref, atol=1e-5, rtol=1e-5)


def test_end_level_truncates_pyramid():
    fpn = FPN(SMALL, 32, num_outs=2, start_level=1, end_level=2)
    outs = fpn(_inputs(64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 8, 8), (1, 32, 4, 4)]
    assert len(fpn.lateral_convs) == 2


def test_norm_and_act_cfg_build_conv_modules():
    fpn = FPN([8, 16], 4, num_outs=2, norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'), no_norm_on_lateral=True)
    keys = set(fpn.state_dict())
    assert 'fpn_convs.0.bn.weight' in keys and 'fpn_convs.0.conv.bias' not in keys  # bias='auto'
    assert 'lateral_convs.0.conv.bias' in keys and not any(k.startswith('lateral_convs.0.bn') for k in keys)
    out = fpn.eval()([torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)])
    assert all((o >= 0).all() for o in out)


def test_default_init_is_xavier_uniform():
    torch.manual_seed(0)
    fpn = FPN(R50_CHANNELS, 256, num_outs=5)
    fpn.init_weights()
    w = fpn.fpn_convs[0].conv.weight
    bound = math.sqrt(6 / (256 * 9 + 256 * 9))
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert all(torch.all(m.conv.bias == 0) for m in list(fpn.lateral_convs) + list(fpn.fpn_convs))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match='add_extra_convs'):
        FPN(R50_CHANNELS, 256, num_outs=5, add_extra_convs='on_top')
    with pytest.raises(ValueError, match='num_outs'):
        FPN(R50_CHANNELS, 256, num_outs=3)
    with pytest.raises(ValueError, match='num_outs'):
        FPN(R50_CHANNELS, 256, num_outs=4, end_level=2)
    with pytest.raises(TypeError, match='in_channels'):
        FPN(256, 256, num_outs=5)
    with pytest.raises(ValueError, match='4 input levels'):
        FPN(SMALL, 8, num_outs=5)(_inputs(64, 64)[:3])
