"""ResNet options MMDetection configs use: dcn / stage_with_dcn, GN + weight standardisation,
plugins (GeneralizedAttention), DC5 (dilated last stage), caffe style, with_cp, ResNetV1d."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

from rcnn_plugins.models.backbones import ResNet, ResNetV1d
from rcnn_plugins.models.layers import DeformConv2dPack, ModulatedDeformConv2dPack

init_default_scope('rcnn_plugins')

DCN = dict(type='DCN', deform_groups=1, fallback_on_stride=False)
ATTN = [dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1, num_heads=8, attention_type='1111',
                      kv_stride=2), stages=(False, False, True, True), position='after_conv2')]


def _randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_dcn_stages_layout_and_zero_offsets_equal_plain_resnet():
    dcn = ResNet(depth=50, dcn=DCN, stage_with_dcn=(False, True, True, True))
    dcn.init_weights()
    assert type(dcn.layer1[0].conv2) is torch.nn.Conv2d
    assert all(type(layer[0].conv2) is DeformConv2dPack for layer in (dcn.layer2, dcn.layer3, dcn.layer4))
    # init_weights (Kaiming over every Conv2d) leaves the offset predictors at zero...
    assert dcn.layer3[1].conv2.conv_offset.weight.abs().sum() == 0
    # ...so with the weights of a plain ResNet the outputs are the plain ResNet's.
    plain = ResNet(depth=50).eval()
    _randomize_bn(plain)
    missing, unexpected = dcn.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and all('conv_offset' in k for k in missing)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(dcn.eval()(x), plain(x)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_dcnv2_and_fallback_on_stride():
    m = ResNet(depth=50, dcn=dict(type='DCNv2', deform_groups=4, fallback_on_stride=True),
               stage_with_dcn=(False, False, True, True))
    # fallback_on_stride: the strided 3x3 conv of a stage's first block stays a plain conv.
    assert type(m.layer3[0].conv2) is torch.nn.Conv2d
    conv = m.layer3[1].conv2
    assert type(conv) is ModulatedDeformConv2dPack and conv.deform_groups == 4 and conv.bias is None
    assert conv.conv_offset.out_channels == 4 * 3 * 9


def test_dcn_errors():
    with pytest.raises(ValueError, match='neither dcn nor plugins'):
        ResNet(depth=18, dcn=DCN, stage_with_dcn=(False, True, True, True))
    with pytest.raises(ValueError, match='conv_cfg .* and dcn .* cannot be combined'):
        ResNet(depth=50, dcn=DCN, conv_cfg=dict(type='ConvWS'), stage_with_dcn=(False, True, True, True))
    with pytest.raises(ValueError, match='stage_with_dcn'):
        ResNet(depth=50, dcn=DCN, stage_with_dcn=(True,))


@torch.no_grad()
def test_gn_ws_conv_is_weight_standardised():
    m = ResNet(depth=50, conv_cfg=dict(type='ConvWS'), norm_cfg=dict(type='GN', num_groups=32)).eval()
    assert 'gn1.weight' in dict(m.named_parameters()) and 'layer1.0.gn3.weight' in dict(m.named_parameters())
    conv = m.layer1[0].conv2
    x = torch.randn(1, 64, 8, 8)
    w = conv.weight
    # Qiao et al.: w_hat = (w - mean over (in, kh, kw)) / (std over the same + eps), per output channel.
    flat = w.reshape(w.shape[0], -1)
    w_hat = (w - flat.mean(1)[:, None, None, None]) / (flat.std(1)[:, None, None, None] + 1e-5)
    torch.testing.assert_close(conv(x), F.conv2d(x, w_hat, padding=1), atol=1e-5, rtol=1e-5)


def test_generalized_attention_plugin_names_and_effect():
    m = ResNet(depth=50, plugins=ATTN).eval()
    keys = m.state_dict()
    assert not any('gen_attention' in k for k in keys if k.startswith(('layer1.', 'layer2.')))
    assert 'layer3.0.gen_attention_block.query_conv.weight' in keys  # mmcv's plugin/module names
    assert m.layer4[2].after_conv2_plugin_names == ['gen_attention_block']
    # The attention runs: with the same other weights, the output differs from the plain ResNet's
    # in stages 3-4 only.
    plain = ResNet(depth=50).eval()
    plain.load_state_dict({k: v for k, v in keys.items() if 'gen_attention' not in k})
    with torch.no_grad():  # mmcv starts the attention's residual scale gamma at 0 (identity)
        for name, p in m.named_parameters():
            if name.endswith('gen_attention_block.gamma'):
                p.fill_(1.)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, ref = m(x), plain(x)
    torch.testing.assert_close(ours[1], ref[1])
    assert not torch.allclose(ours[3], ref[3])


def test_dc5_caffe_layout():
    m = ResNet(depth=50, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), out_indices=(3,), style='caffe',
               norm_cfg=dict(type='BN', requires_grad=False)).eval()
    (out,) = m(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 2048, 4, 6)  # stride 16
    assert m.layer4[0].conv2.dilation == (2, 2) and m.layer4[0].conv2.padding == (2, 2)
    assert m.layer2[0].conv1.stride == (2, 2) and m.layer2[0].conv2.stride == (1, 1)  # caffe: stride on 1x1


def test_with_cp_same_gradients_with_dcn_and_plugins():
    torch.manual_seed(0)
    kw = dict(depth=50, dcn=dict(type='DCNv2', deform_groups=1), stage_with_dcn=(False, False, True, True),
              plugins=ATTN, norm_eval=False)
    plain, cp = ResNet(**kw), ResNet(with_cp=True, **kw)
    with torch.no_grad():
        for p in plain.parameters():
            if p.dim() == 4 and p.shape[0] == 27:  # DCNv2 offset predictors: non-zero offsets
                p.normal_(0, 0.05)
            elif p.shape == (1,):  # attention gamma (0 at init): make the attention count
                p.fill_(1.)
    cp.load_state_dict(plain.state_dict())
    x1 = torch.randn(2, 3, 64, 64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    o1, o2 = plain.train()(x1), cp.train()(x2)
    for a, b in zip(o1, o2):
        torch.testing.assert_close(a, b)
    sum(o.square().sum() for o in o1).backward()
    sum(o.square().sum() for o in o2).backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    grads1, grads2 = dict(plain.named_parameters()), dict(cp.named_parameters())
    for name in ('layer3.1.conv2.conv_offset.weight', 'layer4.0.gen_attention_block.query_conv.weight',
                 'layer1.0.conv1.weight'):
        assert grads1[name].grad is not None
        torch.testing.assert_close(grads1[name].grad, grads2[name].grad)


def test_resnet_v1d_layout():
    m = ResNetV1d(depth=50)
    keys = m.state_dict()
    assert 'stem.0.weight' in keys and 'conv1.weight' not in keys
    assert 'layer1.0.downsample.1.weight' in keys and 'layer2.0.downsample.2.running_var' in keys
    assert isinstance(m.layer2[0].downsample[0], torch.nn.AvgPool2d)
