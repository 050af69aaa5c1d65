"""CARAFE against a slow per-pixel loop, CARAFEPack's mmcv layout and init, and FPN_CARAFE."""
import math

import pytest
import torch
import torch.nn.functional as F

from rcnn_plugins.models.layers.carafe import CARAFEPack, carafe
from rcnn_plugins.models.necks import FPN, FPN_CARAFE
from rcnn_plugins.registry import MODELS


def _carafe_loop(f, m, k, groups, s):
    """mmcv's CARAFE kernel, one output pixel and channel at a time."""
    n, c, h, w = f.shape
    r = k // 2
    out = torch.zeros(n, c, s * h, s * w, dtype=f.dtype)
    for oy in range(s * h):
        for ox in range(s * w):
            y, x = oy // s, ox // s
            for ch in range(c):
                g = ch // (c // groups)
                for dy in range(k):
                    for dx in range(k):
                        iy, ix = y + dy - r, x + dx - r
                        if 0 <= iy < h and 0 <= ix < w:
                            out[:, ch, oy, ox] += f[:, ch, iy, ix] * m[:, g * k * k + dy * k + dx, oy, ox]
    return out


@pytest.mark.parametrize('k, groups, s, size', [(3, 2, 2, (3, 5)), (5, 1, 2, (4, 4)), (3, 1, 3, (2, 3))])
def test_carafe_matches_per_pixel_loop(k, groups, s, size):
    g = torch.Generator().manual_seed(0)
    f = torch.randn(2, 4, *size, generator=g, dtype=torch.float64)
    m = torch.randn(2, groups * k * k, s * size[0], s * size[1], generator=g, dtype=torch.float64)
    torch.testing.assert_close(carafe(f, m, k, groups, s), _carafe_loop(f, m, k, groups, s))


def test_carafe_gradients_and_channel_chunks(monkeypatch):
    import importlib
    module = importlib.import_module("rcnn_plugins.models.layers.carafe")
    monkeypatch.setattr(module, '_CHANNEL_CHUNK', 3)  # 8 channels in chunks of 3, 3, 2
    f = torch.randn(1, 8, 3, 4, dtype=torch.float64, requires_grad=True)
    m = torch.randn(1, 2 * 9, 6, 8, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(carafe(f, m, 3, 2, 2), _carafe_loop(f.detach(), m.detach(), 3, 2, 2))
    assert torch.autograd.gradcheck(lambda a, b: carafe(a, b, 3, 2, 2), (f, m))


def test_carafe_bad_mask_shape():
    with pytest.raises(ValueError, match='masks must have shape'):
        carafe(torch.randn(1, 4, 3, 3), torch.randn(1, 9, 3, 3), 3, 1, 2)


def test_carafe_pack_layout_and_uniform_kernels():
    up = MODELS.build(dict(type='carafe', channels=16, scale_factor=2, up_kernel=5, up_group=1,
                           encoder_kernel=3, encoder_dilation=1))
    assert isinstance(up, CARAFEPack)
    assert {k: tuple(v.shape) for k, v in up.state_dict().items()} == {
        'channel_compressor.weight': (64, 16, 1, 1), 'channel_compressor.bias': (64,),
        'content_encoder.weight': (100, 64, 3, 3), 'content_encoder.bias': (100,)}
    with torch.no_grad():
        up.content_encoder.weight.zero_()
        up.content_encoder.bias.zero_()
    x = torch.randn(1, 16, 5, 6)
    # Zero encoder -> every kernel is 1/25: a zero-padded 5x5 mean, nearest-upsampled by 2.
    expected = F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=True)
    expected = expected.repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(up(x), expected, rtol=1e-5, atol=1e-6)


def test_kernel_normalizer_sums_to_one():
    up = CARAFEPack(4, 2, up_kernel=3, up_group=2)
    mask = up.kernel_normalizer(torch.randn(1, 2 * 9 * 4, 3, 3))
    assert mask.shape == (1, 18, 6, 6)
    torch.testing.assert_close(mask.view(1, 2, 9, 6, 6).sum(2), torch.ones(1, 2, 6, 6))


def test_fpn_carafe_zoo_config_shapes_and_keys():
    cfg = dict(type='FPN_CARAFE', in_channels=[16, 32, 64, 128], out_channels=16, num_outs=5, start_level=0,
               end_level=-1, norm_cfg=None, act_cfg=None, order=('conv', 'norm', 'act'),
               upsample_cfg=dict(type='carafe', up_kernel=5, up_group=1, encoder_kernel=3,
                                 encoder_dilation=1, compressed_channels=64))
    neck = MODELS.build(cfg)
    neck.init_weights()
    keys = set(neck.state_dict())
    assert len(neck.lateral_convs) == len(neck.fpn_convs) == len(neck.upsample_modules) + 1 == 5
    assert 'upsample_modules.3.content_encoder.weight' in keys
    assert neck.lateral_convs[4].conv.stride == (2, 2) and neck.lateral_convs[4].conv.in_channels == 128
    h, w = 64, 96
    xs = [torch.randn(1, c, h // 2 ** (i + 2), w // 2 ** (i + 2)) for i, c in enumerate([16, 32, 64, 128])]
    outs = neck(xs)
    assert [tuple(o.shape) for o in outs] == [(1, 16, math.ceil(h / s), math.ceil(w / s)) for s in (4, 8, 16, 32, 64)]


def test_fpn_carafe_nearest_equals_fpn():
    """With nearest upsampling and no extra level, FPN_CARAFE computes FPN."""
    torch.manual_seed(0)
    ours = FPN_CARAFE([4, 8, 16], 8, num_outs=3, upsample_cfg=dict(type='nearest'))
    fpn = FPN([4, 8, 16], 8, num_outs=3)
    fpn.load_state_dict(ours.state_dict())
    xs = [torch.randn(1, c, 16 // 2 ** i, 12 // 2 ** i) for i, c in enumerate([4, 8, 16])]
    for a, b in zip(ours(xs), fpn(xs)):
        torch.testing.assert_close(a, b)


def test_fpn_carafe_bad_arguments():
    with pytest.raises(ValueError, match='init_cfg must be None'):
        FPN_CARAFE([4, 8], 4, 2, init_cfg=dict(type='Xavier'))
    with pytest.raises(ValueError, match='upsample_kernel'):
        FPN_CARAFE([4, 8], 4, 2, upsample_cfg=dict(type='deconv'))
    with pytest.raises(ValueError, match='no extra levels'):
        FPN_CARAFE([4, 8, 16], 4, 3, end_level=1)
    assert len(FPN_CARAFE([4, 8], 4, 3, upsample_cfg=dict(type='deconv', upsample_kernel=3))([
        torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)])) == 3
