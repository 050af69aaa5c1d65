"""ResNeXt against torchvision's resnext50_32x4d (same keys without fc.*; same outputs to 1e-5)."""
import torch
import torchvision
from torch.nn.modules.batchnorm import _BatchNorm

from rcnn_plugins.models.backbones import ResNeXt


def _randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _tv_features(tv, x):
    x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
    outs = []
    for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
        x = layer(x)
        outs.append(x)
    return outs


@torch.no_grad()
def test_resnext50_32x4d_equals_torchvision():
    torch.manual_seed(0)
    tv = torchvision.models.resnext50_32x4d().eval()
    _randomize_bn(tv)
    ours = ResNeXt(depth=50, groups=32, base_width=4).eval()
    # Key mapping torchvision -> ours: identity, minus the classifier.
    state = {k: v for k, v in tv.state_dict().items() if not k.startswith('fc.')}
    assert ours.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 64, 96)
    for a, b in zip(ours(x), _tv_features(tv, x)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_grouped_widths_per_stage():
    # x101-64x4d: width = floor(planes * 4 / 64) * 64 = 4 * planes: 256, 512, 1024, 2048; groups 64.
    m = ResNeXt(depth=50, groups=64, base_width=4)
    for i, layer in enumerate((m.layer1, m.layer2, m.layer3, m.layer4)):
        conv2 = layer[0].conv2
        assert (conv2.in_channels, conv2.out_channels, conv2.groups) == (256 * 2**i, 256 * 2**i, 64)
        assert layer[0].conv3.out_channels == 256 * 2**i
    # groups=1 is a plain ResNet bottleneck (width = planes).
    assert ResNeXt(depth=50, groups=1).layer1[0].conv2.out_channels == 64
