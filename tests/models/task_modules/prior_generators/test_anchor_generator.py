"""AnchorGenerator: base anchors by hand, grid layout, cache, valid flags, config errors."""
import math

import pytest
import torch

from rcnn_plugins.models.task_modules import AnchorGenerator
from rcnn_plugins.registry import TASK_UTILS

FASTER_RCNN_CFG = dict(type='AnchorGenerator', strides=[4, 8, 16, 32, 64], ratios=[0.5, 1.0, 2.0], scales=[8])


def test_base_anchors_by_hand():
    gen = TASK_UTILS.build(FASTER_RCNN_CFG)
    assert gen.num_levels == 5
    assert gen.num_base_priors == [3, 3, 3, 3, 3]
    # Stride 4, scale 8 -> base size 32 at ratio 1. Ratio r = h / w keeps the area:
    # w = 32 / sqrt(r), h = 32 * sqrt(r); centred on (0, 0) (center_offset 0).
    s = math.sqrt(0.5)
    w05, h05 = 32 / s, 32 * s  # 45.2548..., 22.6274...
    w2, h2 = 32 / math.sqrt(2), 32 * math.sqrt(2)
    expected = torch.tensor([[-w05 / 2, -h05 / 2, w05 / 2, h05 / 2],
                             [-16., -16., 16., 16.],
                             [-w2 / 2, -h2 / 2, w2 / 2, h2 / 2]])
    torch.testing.assert_close(gen.base_anchors[0], expected)
    assert abs(gen.base_anchors[0][0, 2].item() - 22.627417) < 1e-4
    # Stride 64: ratio-1 anchor is 512 x 512.
    torch.testing.assert_close(gen.base_anchors[4][1], torch.tensor([-256., -256., 256., 256.]))


def test_scale_major_ordering_and_center_offset():
    # Two scales, two ratios. scale_major: ratio outer, scale inner.
    gen = AnchorGenerator(strides=[10], ratios=[1.0, 4.0], scales=[1, 2], center_offset=0.5)
    wh = gen.base_anchors[0][:, 2:] - gen.base_anchors[0][:, :2]
    # ratio 1: 10x10, 20x20; ratio 4 (h = 2 w): w = 10 / 2 = 5, h = 20; then 10 x 40.
    torch.testing.assert_close(wh, torch.tensor([[10., 10.], [20., 20.], [5., 20.], [10., 40.]]))
    ctr = (gen.base_anchors[0][:, :2] + gen.base_anchors[0][:, 2:]) / 2
    torch.testing.assert_close(ctr, torch.full((4, 2), 5.0))  # 0.5 * base size
    gen2 = AnchorGenerator(strides=[10], ratios=[1.0, 4.0], scales=[1, 2], scale_major=False)
    wh2 = gen2.base_anchors[0][:, 2:] - gen2.base_anchors[0][:, :2]
    torch.testing.assert_close(wh2, torch.tensor([[10., 10.], [5., 20.], [20., 20.], [10., 40.]]))


def test_octave_scales_and_explicit_centers():
    gen = AnchorGenerator(strides=[8], ratios=[1.0], octave_base_scale=4, scales_per_octave=3)
    expected_scales = torch.tensor([4.0, 4 * 2 ** (1 / 3), 4 * 2 ** (2 / 3)])
    torch.testing.assert_close(gen.scales, expected_scales)
    torch.testing.assert_close(gen.base_anchors[0][:, 2], 8 * expected_scales / 2)
    gen = AnchorGenerator(strides=[8], ratios=[1.0], scales=[1], centers=[(3.0, 5.0)])
    torch.testing.assert_close(gen.base_anchors[0], torch.tensor([[-1., 1., 7., 9.]]))


def test_config_errors():
    with pytest.raises(ValueError, match='either'):
        AnchorGenerator(strides=[8], ratios=[1.0], scales=[1], octave_base_scale=4, scales_per_octave=3)
    with pytest.raises(ValueError, match='either'):
        AnchorGenerator(strides=[8], ratios=[1.0])
    with pytest.raises(ValueError, match='base_sizes'):
        AnchorGenerator(strides=[8, 16], ratios=[1.0], scales=[1], base_sizes=[8])
    with pytest.raises(ValueError, match='centers'):
        AnchorGenerator(strides=[8, 16], ratios=[1.0], scales=[1], centers=[(0, 0)])
    gen = TASK_UTILS.build(FASTER_RCNN_CFG)
    with pytest.raises(ValueError, match='levels'):
        gen.grid_priors([(2, 2)])


def test_grid_priors_layout_and_cache():
    gen = TASK_UTILS.build(FASTER_RCNN_CFG)
    sizes = [(5, 7), (3, 4), (2, 2), (1, 1), (1, 1)]
    priors = gen.grid_priors(sizes)
    assert [p.shape for p in priors] == [(h * w * 3, 4) for h, w in sizes]
    # Row-major over (y, x) then the 3 base anchors: location (y=2, x=3) at stride 4 starts at
    # (2 * 7 + 3) * 3 and equals the base anchors shifted by (x, y) = (12, 8).
    start = (2 * 7 + 3) * 3
    shift = torch.tensor([12., 8., 12., 8.])
    torch.testing.assert_close(priors[0][start:start + 3], gen.base_anchors[0] + shift)
    # Slow reference for a whole level.
    ref = torch.stack([gen.base_anchors[1][a] + torch.tensor([x * 8., y * 8., x * 8., y * 8.])
                       for y in range(3) for x in range(4) for a in range(3)])
    torch.testing.assert_close(priors[1], ref)
    # Cached: the same objects come back for the same sizes / dtype / device.
    again = gen.grid_priors(sizes)
    assert all(a is b for a, b in zip(priors, again))
    half = gen.grid_priors(sizes, dtype=torch.float16)
    assert half[0].dtype == torch.float16 and half[0] is not priors[0]
    other = gen.grid_priors([(6, 7), (3, 4), (2, 2), (1, 1), (1, 1)])
    assert other[0].shape[0] == 6 * 7 * 3


def test_non_square_stride():
    gen = AnchorGenerator(strides=[(4, 8)], ratios=[1.0], scales=[1])
    assert gen.base_sizes == [4]
    priors = gen.grid_priors([(2, 3)])[0]
    # (y=1, x=2): shift (2 * 4, 1 * 8)
    torch.testing.assert_close(priors[1 * 3 + 2], gen.base_anchors[0][0] + torch.tensor([8., 8., 8., 8.]))


def test_valid_flags_on_padded_shape():
    gen = AnchorGenerator(strides=[4, 8], ratios=[0.5, 1.0, 2.0], scales=[8])
    # Batch padded to 32 x 48 (feature maps 8 x 12 and 4 x 6); this image padded to 18 x 30:
    # valid cells ceil(18/4)=5 rows, ceil(30/4)=8 cols; at stride 8: 3 rows, 4 cols.
    sizes = [(8, 12), (4, 6)]
    flags = gen.valid_flags(sizes, (18, 30))
    for level, (feat_h, feat_w), (vh, vw) in ((0, sizes[0], (5, 8)), (1, sizes[1], (3, 4))):
        ref = torch.tensor([y < vh and x < vw for y in range(feat_h) for x in range(feat_w) for _ in range(3)])
        assert flags[level].dtype == torch.bool
        assert torch.equal(flags[level], ref)
    # A pad shape larger than the feature map covers everything.
    assert all(f.all() for f in gen.valid_flags(sizes, (100, 100)))


def test_sparse_priors_and_deprecated_grid_anchors():
    """Strides (w 8, h 16), scales 2 and 4 of base size 8: base anchors [-8, -8, 8, 8] and [-16, -16, 16, 16].
    On a 3 x 5 map, index 13 is cell 6 = (x 1, y 1) -> shift (8, 16), base anchor 1 -> [-8, 0, 24, 32]."""
    gen = AnchorGenerator(strides=[(8, 16)], ratios=[1.0], scales=[2, 4])
    idxs = torch.tensor([13, 0, 1, 29])
    out = gen.sparse_priors(idxs, (3, 5), 0)
    assert out.dtype == torch.float32 and out.shape == (4, 4)
    torch.testing.assert_close(out[:3], torch.tensor([[-8., 0., 24., 32.], [-8., -8., 8., 8.], [-16., -16., 16., 16.]]))
    # Index 29, the last one: cell 14 = (x 4, y 2) -> shift (32, 32), base anchor 1.
    torch.testing.assert_close(out[3], torch.tensor([16., 16., 48., 48.]))
    torch.testing.assert_close(out, gen.single_level_grid_priors((3, 5), 0)[idxs])
    assert gen.sparse_priors(idxs, (3, 5), 0, dtype=torch.float16).dtype == torch.float16
    with pytest.warns(DeprecationWarning, match='grid_priors'):
        legacy = gen.grid_anchors([(3, 5)])
    assert len(legacy) == 1 and torch.equal(legacy[0], gen.grid_priors([(3, 5)])[0])


def test_torchvision_anchors_round_and_stride_from_input_size():
    """round_base_anchors + stride_from_input_size give torchvision's AnchorGenerator's anchors,
    here on a 320 x 416 input whose P6 has 7 columns (stride 416 // 7 = 59) and 5 rows (64)."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
    from torchvision.models.detection.image_list import ImageList
    gen = AnchorGenerator(strides=[4, 8, 16, 32, 64], ratios=[0.5, 1.0, 2.0], scales=[8], round_base_anchors=True,
                          stride_from_input_size=True)
    # 45.25 x 22.63 -> [-23, -11, 23, 11] (torch.round)
    assert gen.base_anchors[0][0].tolist() == [-23., -11., 23., 11.]
    sizes = [(80, 104), (40, 52), (20, 26), (10, 13), (5, 7)]
    tv = TVAnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    images = ImageList(torch.zeros(1, 3, 320, 416), [(320, 400)])
    expected = tv(images, [torch.zeros(1, 1, h, w) for h, w in sizes])[0]
    assert torch.equal(torch.cat(gen.grid_priors(sizes)), expected)
    # 2nd cell of P6, ratio 0.5: 724.08 x 362.04 -> half sides 362, 181, centred at x = 59
    assert gen.grid_priors(sizes)[4][3].tolist() == [59 - 362, -181, 59 + 362, 181]
    # Defaults unchanged: nominal stride 64, fractional anchors.
    plain = AnchorGenerator(strides=[4, 8, 16, 32, 64], ratios=[0.5, 1.0, 2.0], scales=[8])
    assert plain.grid_priors(sizes)[4][3, 0].item() == pytest.approx(64 - 362.039, abs=1e-3)
