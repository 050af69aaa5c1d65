"""MaskedConv2d: the convolution where the mask is set, exactly 0 (bias included) elsewhere."""
import pytest
import torch
import torch.nn.functional as F

from rcnn_plugins.models.layers.feature_adaption import FeatureAdaption
from rcnn_plugins.models.layers.masked_conv import MaskedConv2d


def test_masked_locations_are_zero_and_others_the_plain_conv():
    torch.manual_seed(0)
    conv = MaskedConv2d(3, 2, 3, padding=1)
    x = torch.randn(2, 3, 4, 5)
    mask = torch.rand(2, 1, 4, 5) > 0.5
    out = conv(x, mask)
    dense = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert torch.equal(out[mask.expand_as(out)], dense[mask.expand_as(dense)])
    assert (out[~mask.expand_as(out)] == 0).all()
    assert torch.equal(conv(x), dense)  # no mask: a plain convolution
    # One (H, W) mask for every image.
    assert torch.equal(conv(x, mask[0, 0]), dense * mask[0, 0])
    with pytest.raises(ValueError, match='spatial size'):
        conv(x, mask[..., :3])


def test_feature_adaption_keys_and_zero_shape_offsets():
    fa = FeatureAdaption(4, 6, deform_groups=2)
    assert {k: tuple(v.shape) for k, v in fa.state_dict().items()} == {
        'conv_offset.weight': (36, 2, 1, 1), 'conv_adaption.weight': (6, 4, 3, 3)}
    # Zero shapes give zero offsets: the deformable conv is then the plain 3x3 conv (+ ReLU).
    x = torch.randn(1, 4, 5, 5)
    out = fa(x, torch.zeros(1, 2, 5, 5))
    torch.testing.assert_close(out, F.relu(F.conv2d(x, fa.conv_adaption.weight, padding=1)), rtol=1e-4, atol=1e-5)
