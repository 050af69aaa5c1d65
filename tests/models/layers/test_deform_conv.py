"""DCN / DCNv2 (mmcv's DeformConv2dPack / ModulatedDeformConv2dPack on torchvision's op) against
plain convolutions computed independently."""
import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer
from mmengine.registry import DefaultScope, init_default_scope

from rcnn_plugins.models.layers import DeformConv2dPack, ModulatedDeformConv2dPack


def _x(b=2, c=4, h=7, w=9):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize('stride,padding,dilation,groups', [(1, 1, 1, 1), (2, 1, 1, 1), (1, 2, 2, 2)])
def test_zero_offset_equals_plain_conv(stride, padding, dilation, groups):
    dcn = DeformConv2dPack(4, 6, 3, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=True)
    torch.nn.init.normal_(dcn.bias)
    x = _x()
    ref = F.conv2d(x, dcn.weight, dcn.bias, stride, padding, dilation, groups)
    torch.testing.assert_close(dcn(x), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('dy,dx', [(0, 1), (1, 0), (-1, 2)])
def test_integer_shift_equals_shifted_conv(dy, dx):
    """Offset (dy, dx) on every tap samples x(h + kh - 1 + dy, w + kw - 1 + dx), zero outside: the
    conv of x zero-padded so the window starts at (dy - 1, dx - 1)."""
    dcn = DeformConv2dPack(4, 5, 3, padding=1)
    x = _x()
    b, _, h, w = x.shape
    offset = torch.zeros(b, 2 * 9, h, w)
    offset[:, 0::2] = dy
    offset[:, 1::2] = dx
    # Pad enough on every side, then crop the window that starts at row dy - 1, column dx - 1.
    p = 4
    xp = F.pad(x, (p, p, p, p))
    window = xp[:, :, p + dy - 1:p + dy - 1 + h + 2, p + dx - 1:p + dx - 1 + w + 2]
    ref = F.conv2d(window, dcn.weight)
    torch.testing.assert_close(dcn.deform_forward(x, offset), ref, atol=1e-5, rtol=1e-5)


def test_fractional_offset_is_bilinear():
    """A 1x1 DCN with offset dx = 0.25 mixes each pixel with its right neighbour 3:1."""
    dcn = DeformConv2dPack(1, 1, 1)
    with torch.no_grad():
        dcn.weight.fill_(1.)
    x = _x(1, 1, 3, 4)
    offset = torch.zeros(1, 2, 3, 4)
    offset[:, 1] = 0.25
    right = F.pad(x, (0, 1))[..., 1:]
    torch.testing.assert_close(dcn.deform_forward(x, offset), 0.75 * x + 0.25 * right, atol=1e-6, rtol=1e-6)


def test_dcnv2_mask_half_is_half_of_dcn():
    dcn = DeformConv2dPack(4, 6, 3, padding=1)
    dcn2 = ModulatedDeformConv2dPack(4, 6, 3, padding=1, bias=False)
    dcn2.weight.data.copy_(dcn.weight.data)
    x = _x()
    offset = torch.randn(2, 18, 7, 9, generator=torch.Generator().manual_seed(1))
    mask = torch.full((2, 9, 7, 9), 0.5)
    torch.testing.assert_close(dcn2.deform_forward(x, offset, mask), 0.5 * dcn.deform_forward(x, offset),
                               atol=1e-5, rtol=1e-5)
    # A fresh DCNv2 (zero conv_offset) has zero offsets and mask sigmoid(0) = 0.5.
    torch.testing.assert_close(dcn2(x), 0.5 * F.conv2d(x, dcn.weight, padding=1), atol=1e-5, rtol=1e-5)


def test_state_dict_layout_is_mmcvs():
    dcn = DeformConv2dPack(8, 16, 3, padding=1, deform_groups=2)
    assert {k: tuple(v.shape) for k, v in dcn.state_dict().items()} == {
        'weight': (16, 8, 3, 3), 'conv_offset.weight': (36, 8, 3, 3), 'conv_offset.bias': (36,)}
    dcn2 = ModulatedDeformConv2dPack(8, 16, 3, padding=1, deform_groups=2)
    assert {k: tuple(v.shape) for k, v in dcn2.state_dict().items()} == {
        'weight': (16, 8, 3, 3), 'bias': (16,), 'conv_offset.weight': (54, 8, 3, 3), 'conv_offset.bias': (54,)}


def test_gradients_flow_to_input_weight_and_offsets():
    for cls in (DeformConv2dPack, ModulatedDeformConv2dPack):
        layer = cls(4, 4, 3, padding=1)
        with torch.no_grad():  # non-zero offsets, so offset gradients are not trivially zero
            layer.conv_offset.weight.normal_(0, 0.1)
        x = _x().requires_grad_()
        layer(x).square().sum().backward()
        for name, t in (('x', x.grad), ('weight', layer.weight.grad), ('conv_offset', layer.conv_offset.weight.grad)):
            assert t is not None and t.abs().sum() > 0, f'{cls.__name__}: no gradient for {name}'


def test_offset_gradient_matches_finite_difference():
    dcn = DeformConv2dPack(2, 3, 3, padding=1).double()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    offset = (torch.rand(1, 18, 5, 5, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda o: dcn.deform_forward(x, o), (offset,), eps=1e-6, atol=1e-4)


@pytest.mark.parametrize('scope', [None, 'rcnn_plugins'])
def test_build_conv_layer_finds_dcn_by_mmcv_names(scope):
    if scope is None:
        ctx = DefaultScope.overwrite_default_scope(None)
    else:
        init_default_scope(scope)
        ctx = DefaultScope.overwrite_default_scope(scope)
    with ctx:
        dcn = build_conv_layer(dict(type='DCN', deform_groups=1), 4, 4, 3, padding=1, bias=False)
        dcn2 = build_conv_layer(dict(type='DCNv2', deform_groups=2), 4, 4, 3, padding=1, bias=False)
        ws = build_conv_layer(dict(type='ConvWS'), 4, 4, 3)
    assert type(dcn) is DeformConv2dPack and type(dcn2) is ModulatedDeformConv2dPack
    assert dcn2.deform_groups == 2 and dcn2.bias is None
    assert type(ws).__name__ == 'ConvWS2d'


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    layer = ModulatedDeformConv2dPack(4, 4, 3, padding=1)
    with torch.no_grad():
        layer.conv_offset.weight.normal_(0, 0.1)
    x = _x()
    torch.testing.assert_close(layer.cuda()(x.cuda()).cpu(), layer.cpu()(x), atol=1e-4, rtol=1e-4)


def test_nan_offsets_give_nan_not_a_crash():
    """torchvision's CPU kernel segfaults on NaN offsets; a diverged run must fail like any NaN."""
    dcn = DeformConv2dPack(4, 4, 3, padding=1)
    x = _x()
    offset = torch.full((2, 18, 7, 9), float('nan'))
    assert torch.isnan(dcn.deform_forward(x, offset)).all()
    offset = torch.zeros(2, 18, 7, 9)
    torch.testing.assert_close(dcn.deform_forward(x, offset), F.conv2d(x, dcn.weight, padding=1), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason='this CPU has no native bf16')
@pytest.mark.parametrize('cls', [DeformConv2dPack, ModulatedDeformConv2dPack])
def test_cpu_bf16_autocast_runs_in_float32(cls):
    """torchvision's CPU kernel has no bf16: under CPU autocast (``--amp``) the layer takes bf16
    features, runs in float32 and returns bf16 equal to the float32 layer on the same (rounded) input."""
    torch.manual_seed(0)
    layer = cls(4, 6, 3, padding=1)
    torch.nn.init.normal_(layer.conv_offset.weight, std=0.1)  # non-zero offsets (and masks for DCNv2)
    x = torch.randn(1, 4, 7, 9).to(torch.bfloat16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
        out.float().sum().backward()  # the backward runs too
    assert out.dtype == torch.bfloat16
    expected = layer(x.float())
    assert torch.allclose(out.float(), expected, rtol=2e-2, atol=2e-2)
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
