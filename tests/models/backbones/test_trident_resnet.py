"""TridentConv / TridentBottleneck / TridentResNet against plain convs and plain ResNets that load the
same weights: a trident branch with dilation d is exactly a ResNet whose last stage has dilation d."""
import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from rcnn_plugins.models.backbones import ResNet, TridentResNet
from rcnn_plugins.models.backbones.resnet_blocks import Bottleneck
from rcnn_plugins.models.backbones.trident_resnet import TridentBottleneck
from rcnn_plugins.models.layers import TridentConv

C4 = dict(num_stages=3, strides=(1, 2, 2), out_indices=(2, ), style='caffe', base_channels=8)


def _randomize(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize('stride', [1, 2])
def test_trident_conv_is_one_weight_at_each_dilation(stride):
    torch.manual_seed(0)
    conv = TridentConv(4, 6, 3, stride=stride, trident_dilations=(1, 2, 3), test_branch_idx=1, bias=True)
    xs = [torch.randn(2, 4, 11, 13) for _ in range(3)]
    outs = conv.train()(xs)
    for x, out, d in zip(xs, outs, (1, 2, 3)):
        plain = torch.nn.Conv2d(4, 6, 3, stride=stride, padding=d, dilation=d)
        plain.load_state_dict(conv.state_dict())  # same keys: weight, bias
        torch.testing.assert_close(out, plain(x))
    assert outs[0].shape == (2, 6, 11 if stride == 1 else 6, 13 if stride == 1 else 7)
    # Eval with test_branch_idx=1: one input, one output, dilation 2 only.
    (one, ) = conv.eval()([xs[0]])
    torch.testing.assert_close(one, F.conv2d(xs[0], conv.weight, conv.bias, stride, 2, 2))
    with pytest.raises(ValueError, match='one input'):
        conv(xs)
    # test_branch_idx=-1 runs every branch in eval too.
    conv.test_branch_idx = -1
    assert len(conv(xs)) == 3


def test_trident_conv_bad_arguments():
    with pytest.raises(ValueError, match='test_branch_idx'):
        TridentConv(4, 4, 3, trident_dilations=(1, 2), test_branch_idx=2)
    with pytest.raises(ValueError, match='got 2 inputs for 3 branches'):
        TridentConv(4, 4, 3).train()([torch.zeros(1, 4, 5, 5)] * 2)


@torch.no_grad()
def test_trident_bottleneck_branch_equals_dilated_bottleneck():
    torch.manual_seed(0)
    block = TridentBottleneck(trident_dilations=(1, 2, 3), test_branch_idx=-1, concat_output=False, inplanes=16,
                              planes=4, stride=1).eval()
    _randomize(block)
    x = torch.randn(2, 16, 9, 9)
    outs = block(x)
    assert isinstance(outs, list) and len(outs) == 3
    for d, out in zip((1, 2, 3), outs):
        plain = Bottleneck(inplanes=16, planes=4, dilation=d).eval()
        plain.load_state_dict(block.state_dict(), strict=True)
        torch.testing.assert_close(out, plain(x))
    # A list input is taken branch by branch; concat_output stacks branch-major.
    block.concat_output = True
    xs = [torch.randn(2, 16, 9, 9) for _ in range(3)]
    stacked = block(xs)
    assert stacked.shape == (6, 16, 9, 9)
    for k, d in enumerate((1, 2, 3)):
        plain = Bottleneck(inplanes=16, planes=4, dilation=d).eval()
        plain.load_state_dict(block.state_dict())
        torch.testing.assert_close(stacked[2 * k:2 * k + 2], plain(xs[k]))


def _pair(test_branch_idx):
    torch.manual_seed(0)
    trident = TridentResNet(50, num_branch=3, test_branch_idx=test_branch_idx, trident_dilations=(1, 2, 3), **C4)
    _randomize(trident)
    return trident


@torch.no_grad()
def test_trident_resnet_eval_runs_one_branch_equal_to_dilated_resnet():
    trident = _pair(1).eval()
    x = torch.randn(2, 3, 64, 48)
    (out, ) = trident(x)
    assert out.shape == (2, 128, 4, 3)  # 8 * 4 * 4 channels, stride 16; batch B (one branch)
    plain = ResNet(50, dilations=(1, 1, 2), **C4).eval()
    plain.load_state_dict(trident.state_dict(), strict=True)  # identical keys and shapes
    torch.testing.assert_close(out, plain(x)[0])


@torch.no_grad()
def test_trident_resnet_all_branches_stacked_branch_major():
    trident = _pair(-1).eval()
    x = torch.randn(2, 3, 48, 48)
    (out, ) = trident(x)
    assert out.shape == (6, 128, 3, 3)
    for k, d in enumerate((1, 2, 3)):
        plain = ResNet(50, dilations=(1, 1, d), **C4).eval()
        plain.load_state_dict(trident.state_dict())
        torch.testing.assert_close(out[2 * k:2 * k + 2], plain(x)[0])
    # Training runs all branches whatever test_branch_idx says.
    trident1 = _pair(1).train()
    assert trident1(x)[0].shape == (6, 128, 3, 3)


def test_trident_resnet_with_cp_same_gradients():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    grads = []
    for with_cp in (False, True):
        m = _pair(1)
        m.layer3[0].with_cp = m.layer3[-1].with_cp = with_cp
        m.train()
        m(x)[0].square().sum().backward()
        grads.append(m.layer3[0].conv2.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_trident_resnet_bad_arguments():
    with pytest.raises(ValueError, match='num_branch'):
        TridentResNet(50, num_branch=2, test_branch_idx=1, trident_dilations=(1, 2, 3), **C4)
    with pytest.raises(ValueError, match='num_stages must be 3'):
        TridentResNet(50, num_branch=3, test_branch_idx=1, trident_dilations=(1, 2, 3))
    with pytest.raises(ValueError, match='depth'):
        TridentResNet(18, num_branch=3, test_branch_idx=1, trident_dilations=(1, 2, 3), **C4)
    with pytest.raises(ValueError, match='dcn is not supported'):
        TridentResNet(50, num_branch=3, test_branch_idx=1, trident_dilations=(1, 2, 3), dcn=dict(type='DCN'),
                      stage_with_dcn=(False, False, True), **C4)
