"""ResNet backbone: MMDetection/torchvision key layout, numerics against torchvision, freezing, init."""
import os

import pytest
import torch
import torchvision
from torch.nn.modules.batchnorm import _BatchNorm

import rcnn_plugins.models.backbones  # noqa: F401  (registers ResNet)
from rcnn_plugins.models.backbones import ResNet
from rcnn_plugins.models.backbones.resnet import Bottleneck
from rcnn_plugins.registry import MODELS


def _tv_state_dict(tv_model):
    return {k: v for k, v in tv_model.state_dict().items() if not k.startswith('fc.')}


def _tv_features(tv, x):
    """torchvision ResNet forward up to each stage (independent reference)."""
    x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
    outs = []
    for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
        x = layer(x)
        outs.append(x)
    return outs


def _randomize_bn(model, seed=0):
    """Non-trivial BN statistics/affine so that a wrong BN wiring changes the output."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_r50_keys_and_param_count_match_torchvision():
    model = MODELS.build(dict(type='ResNet', depth=50))
    tv_sd = _tv_state_dict(torchvision.models.resnet50())
    assert list(model.state_dict().keys()) == list(tv_sd.keys())
    for k, v in model.state_dict().items():
        assert v.shape == tv_sd[k].shape, k
    assert sum(p.numel() for p in model.parameters()) == 25_557_032 - 2_049_000


@pytest.mark.parametrize('depth, tv_fn', [(18, torchvision.models.resnet18), (50, torchvision.models.resnet50)])
def test_forward_equals_torchvision(depth, tv_fn):
    torch.manual_seed(0)
    tv = tv_fn()
    _randomize_bn(tv)
    tv.eval()
    model = ResNet(depth=depth)
    model.load_state_dict(_tv_state_dict(tv), strict=True)
    model.eval()
    x = torch.randn(1, 3, 224, 320)
    with torch.no_grad():
        ours = model(x)
        ref = _tv_features(tv, x)
    channels = (256, 512, 1024, 2048) if depth == 50 else (64, 128, 256, 512)
    assert [tuple(o.shape) for o in ours] == [(1, c, 224 // s, 320 // s) for c, s in zip(channels, (4, 8, 16, 32))]
    for o, r in zip(ours, ref):
        assert o.shape == r.shape
        torch.testing.assert_close(o, r, atol=1e-5, rtol=0)


def test_r34_output_shapes():
    channels = (64, 128, 256, 512)
    model = ResNet(depth=34).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 224, 320))
    assert [tuple(o.shape) for o in outs] == [(1, c, 224 // s, 320 // s) for c, s in zip(channels, (4, 8, 16, 32))]


def test_out_indices_num_stages_and_dilation():
    model = ResNet(depth=18, num_stages=3, out_indices=(2, 0)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 16, 16), (1, 256, 4, 4)]  # stage order
    assert not hasattr(model, 'layer4')
    # Dilated last stage keeps stride 16 (DC5 style) and the key layout.
    dil = ResNet(depth=18, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)).eval()
    assert dil.layer4[1].conv1.dilation == (2, 2) and dil.layer4[1].conv1.padding == (2, 2)
    assert tuple(dil(torch.randn(1, 3, 64, 64))[-1].shape) == (1, 512, 4, 4)


def test_caffe_style_moves_stride_to_first_conv():
    pt, caffe = ResNet(depth=50, style='pytorch'), ResNet(depth=50, style='caffe')
    assert pt.layer2[0].conv1.stride == (1, 1) and pt.layer2[0].conv2.stride == (2, 2)
    assert caffe.layer2[0].conv1.stride == (2, 2) and caffe.layer2[0].conv2.stride == (1, 1)
    assert list(pt.state_dict()) == list(caffe.state_dict())
    outs = caffe.eval()(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]


def test_deep_stem_and_avg_down_layout():
    model = ResNet(depth=50, deep_stem=True, avg_down=True, stem_channels=64).eval()
    keys = list(model.state_dict())
    assert 'conv1.weight' not in keys
    assert [k for k in keys if k.startswith('stem.') and k.endswith('weight')] == \
        ['stem.0.weight', 'stem.1.weight', 'stem.3.weight', 'stem.4.weight', 'stem.6.weight', 'stem.7.weight']
    assert isinstance(model.layer2[0].downsample[0], torch.nn.AvgPool2d)
    assert model.layer2[0].downsample[1].stride == (1, 1)
    # layer1 has stride 1: MMDetection still puts a (1x1, identity) pool first, so its keys are
    # downsample.1 (conv) and downsample.2 (norm), as in MMDetection's ResNeSt / Res2Net checkpoints.
    assert 'layer1.0.downsample.1.weight' in keys and 'layer1.0.downsample.2.running_mean' in keys
    outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 24), (8, 12), (4, 6), (2, 3)]


def test_norm_cfg_gn_names_and_requires_grad_false():
    gn = ResNet(depth=18, norm_cfg=dict(type='GN', num_groups=32))
    assert 'layer1.0.gn1.weight' in gn.state_dict() and 'gn1.weight' in gn.state_dict()
    nograd = ResNet(depth=18, norm_cfg=dict(type='BN', requires_grad=False))
    assert all(not p.requires_grad for n, p in nograd.named_parameters() if 'bn' in n or 'downsample.1' in n)
    assert all(p.requires_grad for n, p in nograd.named_parameters() if 'conv' in n)


def test_frozen_stages_survive_train():
    model = ResNet(depth=18, frozen_stages=2, norm_eval=False)
    model.train()
    frozen = ['conv1', 'bn1', 'layer1', 'layer2']
    for name, p in model.named_parameters():
        assert p.requires_grad == (name.split('.')[0] not in frozen), name
    assert not model.bn1.training and not model.layer1.training and not model.layer2[1].bn2.training
    assert model.layer3.training and model.layer3[0].bn1.training
    # frozen BN statistics do not move; trainable ones do (norm_eval=False)
    before1 = model.layer1[0].bn1.running_mean.clone()
    before3 = model.layer3[0].bn1.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(model.layer1[0].bn1.running_mean, before1)
    assert not torch.equal(model.layer3[0].bn1.running_mean, before3)


def test_norm_eval_freezes_bn_statistics_not_weights():
    model = ResNet(depth=18, norm_eval=True)
    model.train()
    assert model.training and model.layer3.training
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    assert all(p.requires_grad for p in model.parameters())
    stats = {k: v.clone() for k, v in model.state_dict().items() if 'running' in k}
    model(torch.randn(2, 3, 64, 64))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in stats.items())


def test_with_cp_matches_plain_forward_and_backward():
    torch.manual_seed(0)
    plain = ResNet(depth=18, norm_eval=False)
    cp = ResNet(depth=18, norm_eval=False, with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x1 = torch.randn(2, 3, 32, 32, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    out1, out2 = plain.train()(x1), cp.train()(x2)
    for a, b in zip(out1, out2):
        torch.testing.assert_close(a, b)
    sum(o.sum() for o in out1).backward()
    sum(o.sum() for o in out2).backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(plain.layer2[0].conv1.weight.grad, cp.layer2[0].conv1.weight.grad)


def test_default_init_kaiming_and_zero_init_residual():
    torch.manual_seed(0)
    model = ResNet(depth=50, num_stages=2, out_indices=(0, 1))
    model.init_weights()
    # Kaiming normal, fan_out, relu gain: std = sqrt(2 / (out_channels * k * k))
    w = model.layer2[0].conv2.weight
    assert abs(w.std().item() / (2 / (128 * 9)) ** 0.5 - 1) < 0.03
    for block in [b for layer in (model.layer1, model.layer2) for b in layer]:
        assert torch.all(block.bn3.weight == 0) and torch.all(block.bn3.bias == 0)
        assert torch.all(block.bn1.weight == 1) and torch.all(block.bn2.bias == 0)
    plain = ResNet(depth=18, zero_init_residual=False)
    plain.init_weights()
    assert torch.all(plain.layer1[0].bn2.weight == 1)
    r18 = ResNet(depth=18)
    r18.init_weights()
    assert torch.all(r18.layer2[1].bn2.weight == 0) and torch.all(r18.layer2[1].bn1.weight == 1)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(KeyError, match=r'allowed depths: \[18, 34, 50, 101, 152\]'):
        ResNet(depth=42)
    with pytest.raises(ValueError, match='stage_with_dcn'):
        ResNet(depth=50, dcn=dict(type='DCNv2'), stage_with_dcn=(False, True))
    with pytest.raises(ValueError, match='style'):
        ResNet(depth=50, style='tf')
    # The block on its own refuses it too (MMDetection's Bottleneck accepts only 'pytorch' and 'caffe').
    with pytest.raises(ValueError, match="Bottleneck: style must be 'pytorch' or 'caffe', got 'tensorflow'"):
        Bottleneck(64, 16, style='tensorflow')
    assert Bottleneck(64, 16, stride=2, style='caffe').conv1.stride == (2, 2)
    with pytest.raises(ValueError, match='out_indices'):
        ResNet(depth=50, num_stages=3, out_indices=(0, 3))
    with pytest.raises(ValueError, match='frozen_stages'):
        ResNet(depth=50, frozen_stages=5)


@pytest.fixture
def r18_checkpoint(tmp_path):
    torch.manual_seed(1)
    tv = torchvision.models.resnet18()
    path = tmp_path / 'r18.pth'
    torch.save(tv.state_dict(), path)
    return tv, path


def _assert_loaded(model, tv):
    ours = model.state_dict()
    for k, v in _tv_state_dict(tv).items():
        assert torch.equal(ours[k], v), k


def test_pretrained_local_path(r18_checkpoint):
    tv, path = r18_checkpoint
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    _assert_loaded(model, tv)
    with pytest.warns(DeprecationWarning):
        old = ResNet(depth=18, pretrained=str(path))
    old.init_weights()
    _assert_loaded(old, tv)


def test_pretrained_torchvision_scheme_from_hub_cache(r18_checkpoint, tmp_path, monkeypatch):
    tv, path = r18_checkpoint
    fname = os.path.basename(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url)
    assert fname == 'resnet18-f37072fd.pth'
    cache = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    os.replace(path, cache / fname)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))

    def no_network(*args, **kwargs):
        raise AssertionError('tried to download')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18'))
    model.init_weights()
    _assert_loaded(model, tv)


def test_pretrained_torchvision_scheme_missing_file_is_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18'))
    expected = os.path.join(str(tmp_path), 'hub', 'checkpoints', 'resnet18-f37072fd.pth')
    with pytest.raises(FileNotFoundError) as info:
        model.init_weights()
    assert expected in str(info.value) and 'init_cfg=None' in str(info.value)
    with pytest.raises(KeyError, match=r"unknown torchvision checkpoint 'torchvision://resnet19'; did you mean resnet1"):
        ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet19')).init_weights()
