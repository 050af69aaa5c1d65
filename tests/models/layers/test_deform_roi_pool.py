"""Deformable RoI pooling (mmcv's DeformRoIPool / DeformRoIPoolPack / ModulatedDeformRoIPoolPack)
against torchvision's roi_align and hand-computed samples.

mmcv's kernel maps a box to ``x * spatial_scale - 0.5`` with no minimum size, i.e. RoIAlign with
``aligned=True``; so with zero offsets it equals torchvision's ``roi_align(..., aligned=True)``."""
import pytest
import torch
from mmengine.registry import init_default_scope
from torchvision.ops import roi_align

from rcnn_plugins.models.layers import DeformRoIPool, DeformRoIPoolPack, ModulatedDeformRoIPoolPack, deform_roi_pool
from rcnn_plugins.registry import MODELS


def _inputs(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 20, 24, generator=g, dtype=dtype)
    # Mixed sizes (adaptive grids 1..4 per side), one box partly outside, one tiny.
    rois = torch.tensor([[0, 1., 2, 30, 25], [1, -3, 4, 50, 44], [0, 10, 10, 10.5, 11], [1, 40, 30, 60, 50]],
                        dtype=dtype)
    return x, rois


@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_zero_offsets_equal_roi_align(sampling_ratio):
    x, rois = _inputs()
    expected = roi_align(x, rois, (7, 7), 0.5, sampling_ratio, aligned=True)
    plain = DeformRoIPool(7, spatial_scale=0.5, sampling_ratio=sampling_ratio)(x, rois)
    torch.testing.assert_close(plain, expected, atol=1e-5, rtol=1e-5)
    zeros = DeformRoIPool(7, spatial_scale=0.5, sampling_ratio=sampling_ratio)(x, rois, torch.zeros(4, 2, 7, 7))
    torch.testing.assert_close(zeros, expected, atol=1e-5, rtol=1e-5)
    # A new Pack layer has a zero last offset fc (mmcv's init): it pools like RoIAlign.
    pack = DeformRoIPoolPack(7, output_channels=4, deform_fc_channels=8, spatial_scale=0.5,
                             sampling_ratio=sampling_ratio)
    torch.testing.assert_close(pack(x, rois), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_constant_offset_equals_roi_align_of_shifted_box(sampling_ratio):
    x, rois = _inputs()
    gamma, dx, dy = 0.1, 0.7, -0.4
    offset = torch.empty(4, 2, 3, 5)
    offset[:, 0], offset[:, 1] = dx, dy
    out = deform_roi_pool(x, rois, offset, (3, 5), 0.5, sampling_ratio, gamma)
    # Shift (input pixels) = gamma * offset * box size; the box size, so the grid, is unchanged.
    w, h = rois[:, 3] - rois[:, 1], rois[:, 4] - rois[:, 2]
    shifted = rois.clone()
    shifted[:, [1, 3]] += (gamma * dx * w)[:, None]
    shifted[:, [2, 4]] += (gamma * dy * h)[:, None]
    expected = roi_align(x, shifted, (3, 5), 0.5, sampling_ratio, aligned=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_per_bin_offsets_by_hand():
    # f(y, x) = x + 10 y is reproduced exactly by bilinear interpolation inside the map, so each
    # 1-sample bin is its sample point's value. Box (2, 2)-(10, 6) at scale 1 -> feature box
    # (1.5, 1.5)-(9.5, 5.5), 2x2 bins of 4x2 px; bin centres x 3.5 / 7.5, y 2.5 / 4.5.
    ys, xs = torch.meshgrid(torch.arange(12.), torch.arange(16.), indexing='ij')
    x = (xs + 10 * ys)[None, None]
    rois = torch.tensor([[0, 2., 2, 10, 6]])
    offset = torch.tensor([[[[0., 1.], [-1., 0.5]], [[0., 0.], [1., -0.5]]]])  # (1, 2: x|y, 2, 2)
    out = deform_roi_pool(x, rois, offset, (2, 2), 1.0, 1, gamma=0.25)
    # Shift = 0.25 * offset * (8 wide, 4 high): x shift 2 * offset_x, y shift 1 * offset_y.
    cx = torch.tensor([[3.5, 7.5], [3.5, 7.5]]) + 2 * offset[0, 0]
    cy = torch.tensor([[2.5, 2.5], [4.5, 4.5]]) + 1 * offset[0, 1]
    torch.testing.assert_close(out[0, 0], cx + 10 * cy)


def test_samples_outside_the_map_are_zero():
    x = torch.ones(1, 1, 4, 4)
    # Offset pushes the single sample 10 boxes to the right: beyond x = W, so 0 (RoIAlign's rule).
    out = deform_roi_pool(x, torch.tensor([[0, 0., 0, 2, 2]]), torch.tensor([[[[100.]], [[0.]]]]), (1, 1),
                          1.0, 1, 0.1)
    assert out.item() == 0.0


def test_modulated_with_zero_mask_weights_is_half():
    x, rois = _inputs()
    torch.manual_seed(1)
    mod = ModulatedDeformRoIPoolPack(7, output_channels=4, deform_fc_channels=8, spatial_scale=0.5)
    torch.nn.init.normal_(mod.offset_fc[4].weight, std=0.01)  # real offsets, not only zeros
    pack = DeformRoIPoolPack(7, output_channels=4, deform_fc_channels=8, spatial_scale=0.5)
    pack.offset_fc.load_state_dict(mod.offset_fc.state_dict())
    assert not torch.allclose(pack(x, rois), roi_align(x, rois, (7, 7), 0.5, 0, aligned=True))
    torch.testing.assert_close(mod(x, rois), 0.5 * pack(x, rois))


def test_gradients_reach_offset_fc_and_features():
    x, rois = _inputs(torch.float64)
    x.requires_grad_(True)
    pack = ModulatedDeformRoIPoolPack(3, output_channels=4, deform_fc_channels=8, spatial_scale=0.5).double()
    pack(x, rois).square().sum().backward()
    for fc in (pack.offset_fc[4], pack.mask_fc[2], pack.offset_fc[0]):
        assert fc.weight.grad is not None
    assert pack.offset_fc[4].weight.grad.abs().sum() > 0 and pack.mask_fc[2].weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0
    # Analytic gradient in the offsets and features = finite differences (away from sample-grid kinks).
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(1, 2, 8, 8, dtype=torch.float64, generator=g, requires_grad=True)
    small = torch.tensor([[0, 1.3, 2.1, 11.7, 9.4]], dtype=torch.float64)
    offset = (0.3 * torch.randn(1, 2, 2, 2, dtype=torch.float64, generator=g)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f, o: deform_roi_pool(f, small, o, (2, 2), 0.5, 2, 0.1), (feats, offset))


def test_state_dict_layout_is_mmcvs():
    shapes = {k: tuple(v.shape) for k, v in ModulatedDeformRoIPoolPack(7).state_dict().items()}
    assert shapes == {'offset_fc.0.weight': (1024, 12544), 'offset_fc.0.bias': (1024,),
                      'offset_fc.2.weight': (1024, 1024), 'offset_fc.2.bias': (1024,),
                      'offset_fc.4.weight': (98, 1024), 'offset_fc.4.bias': (98,),
                      'mask_fc.0.weight': (1024, 12544), 'mask_fc.0.bias': (1024,),
                      'mask_fc.2.weight': (49, 1024), 'mask_fc.2.bias': (49,)}
    assert set(DeformRoIPoolPack(7).state_dict()) == {k for k in shapes if k.startswith('offset_fc')}


def test_single_roi_extractor_builds_one_per_level_and_pools_like_roi_align():
    init_default_scope('rcnn_plugins')
    common = dict(type='SingleRoIExtractor', out_channels=4, featmap_strides=[4, 8])
    dpool = MODELS.build(dict(common, roi_layer=dict(type='DeformRoIPoolPack', output_size=7, output_channels=4,
                                                     deform_fc_channels=8)))
    align = MODELS.build(dict(common, roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)))
    assert [m.spatial_scale for m in dpool.roi_layers] == [0.25, 0.125]
    g = torch.Generator().manual_seed(3)
    feats = [torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 4, 8, 8, generator=g)]
    rois = torch.tensor([[0, 2., 3, 40, 30], [0, 0, 0, 60, 60], [0, 5, 5, 20, 9]])
    torch.testing.assert_close(dpool(feats, rois), align(feats, rois), atol=1e-5, rtol=1e-5)


def test_empty_rois_and_bad_channels():
    pack = DeformRoIPoolPack(7, output_channels=4, deform_fc_channels=8)
    assert pack(torch.randn(1, 4, 8, 8), torch.zeros(0, 5)).shape == (0, 4, 7, 7)
    with pytest.raises(ValueError, match='output_channels'):
        pack(torch.randn(1, 3, 8, 8), torch.zeros(1, 5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_matches_cpu():
    x, rois = _inputs()
    offset = 0.3 * torch.randn(4, 2, 7, 7, generator=torch.Generator().manual_seed(4))
    cpu = deform_roi_pool(x, rois, offset, (7, 7), 0.5, 0, 0.1)
    gpu = deform_roi_pool(x.cuda(), rois.cuda(), offset.cuda(), (7, 7), 0.5, 0, 0.1)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=1e-5)
