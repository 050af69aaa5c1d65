"""The vectorised CPU RoIAlign backward against torchvision's own backward and a hand case."""
import pytest
import torch
from torchvision.ops import roi_align

from rcnn_plugins.models.layers import RoIAlign
from rcnn_plugins.models.layers.roi_align_cpu import (roi_align_backward, roi_align_cpu_train,
                                                       use_vectorised_backward)


def _random_rois(num_imgs, img_h, img_w, num, max_frac, generator):
    """RoIs over (and partly beyond) the image, three of them empty."""
    size = torch.tensor([img_w, img_h])
    xy = torch.rand(num, 2, generator=generator) * size * 1.3 - 0.15 * size
    wh = torch.rand(num, 2, generator=generator) * size * max_frac
    rois = torch.cat([torch.randint(0, num_imgs, (num, 1), generator=generator).float(), xy, xy + wh], 1)
    rois[:3, 3:] = rois[:3, 1:3]
    return rois


@pytest.mark.parametrize('sampling_ratio', [0, 2, 3])
@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('channels_last', [True, False])
def test_backward_matches_torchvision(sampling_ratio, aligned, channels_last):
    g = torch.Generator().manual_seed(sampling_ratio * 4 + aligned * 2 + channels_last)
    num_imgs, channels, height, width, scale = 2, 6, 13, 21, 0.25
    feat = torch.randn(num_imgs, channels, height, width, generator=g)
    if channels_last:
        feat = feat.contiguous(memory_format=torch.channels_last)
    rois = _random_rois(num_imgs, height / scale, width / scale, 70, 0.8, g)
    grad_out = torch.randn(70, channels, 7, 7, generator=g)

    ref_feat = feat.clone().requires_grad_()
    roi_align(ref_feat, rois, 7, scale, sampling_ratio, aligned).backward(grad_out)
    ours_feat = feat.clone().requires_grad_()
    out = roi_align_cpu_train(ours_feat, rois, (7, 7), scale, sampling_ratio, aligned)
    out.backward(grad_out)

    assert torch.equal(out, roi_align(feat, rois, 7, scale, sampling_ratio, aligned))  # same forward op
    assert ref_feat.grad.abs().sum() > 0
    torch.testing.assert_close(ours_feat.grad, ref_feat.grad, rtol=1e-5, atol=1e-5)


def test_backward_hand_case_and_edges():
    # One 1x1 bin, a 1x1 sample grid: the sample sits at the RoI centre (aligned: box [1, 1, 3, 2]
    # -> continuous [0.5, 2.5] x [0.5, 1.5], centre (x, y) = (1.5, 1.0)), between columns 1 and 2
    # of row 1: half the gradient to each.
    grad = roi_align_backward(torch.tensor([[[[4.0]]]]), torch.tensor([[0., 1., 1., 3., 2.]]),
                              (1, 1, 3, 4), 1.0, 1, True)
    expected = torch.zeros(1, 1, 3, 4)
    expected[0, 0, 1, 1:3] = 2.0
    torch.testing.assert_close(grad, expected)
    assert grad.is_contiguous(memory_format=torch.channels_last)
    # A RoI more than a pixel outside the map adds nothing; no RoIs: a zero gradient.
    far = roi_align_backward(torch.ones(1, 1, 2, 2), torch.tensor([[0., 40., 40., 50., 50.]]), (1, 1, 8, 8),
                             1.0, 0, True)
    assert far.abs().sum() == 0
    none = roi_align_backward(torch.zeros(0, 3, 7, 7), torch.zeros(0, 5), (2, 3, 5, 5), 0.5, 0, True)
    assert none.shape == (2, 3, 5, 5) and none.abs().sum() == 0


def test_chunked_many_rois_and_bf16_grad():
    # Enough RoIs and channels for several chunks; the result does not depend on the chunking.
    g = torch.Generator().manual_seed(7)
    feat = torch.randn(2, 32, 40, 48, generator=g).contiguous(memory_format=torch.channels_last)
    rois = _random_rois(2, 160, 192, 300, 0.5, g)
    grad_out = torch.randn(300, 32, 7, 7, generator=g)
    ref_feat = feat.clone().requires_grad_()
    roi_align(ref_feat, rois, 7, 0.25, 0, True).backward(grad_out)
    torch.testing.assert_close(roi_align_backward(grad_out, rois, feat.shape, 0.25, 0, True), ref_feat.grad,
                               rtol=1e-5, atol=1e-5)
    # Under bf16 autocast (float32 RoIs, as the extractor passes them) a bf16 feature map gets a
    # bf16 gradient, computed in float32.
    half = feat.bfloat16().requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = roi_align_cpu_train(half, rois, (7, 7), 0.25, 0, True)
    out.float().backward(grad_out)
    assert half.grad.dtype == torch.bfloat16
    torch.testing.assert_close(half.grad.float(), ref_feat.grad, rtol=2e-2, atol=5e-2)


def test_module_uses_it_only_when_training_on_cpu():
    layer = RoIAlign(7, spatial_scale=0.25, sampling_ratio=2)
    feat = torch.randn(1, 4, 10, 10)
    rois = torch.tensor([[0., 2., 3., 30., 25.]])
    leaf = feat.clone().requires_grad_()
    out = layer(leaf, rois)
    assert out.grad_fn is not None and 'RoIAlignFunction' in type(out.grad_fn).__name__
    # Without a gradient to compute (no_grad, or an input that needs none) torchvision's op runs.
    assert use_vectorised_backward(leaf)
    with torch.no_grad():
        assert not use_vectorised_backward(leaf)
    assert not use_vectorised_backward(leaf.detach())
