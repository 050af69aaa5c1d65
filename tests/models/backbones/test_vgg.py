"""VGG backbone against torchvision's own VGG layers; frozen stages; pretrained loading (local path,
torchvision:// from the hub cache, missing file)."""
import os.path as osp

import pytest
import torch
from torchvision.models import vgg as tv_vgg

from rcnn_plugins.models.backbones import VGG
from rcnn_plugins.registry import MODELS

TV_CFG = {11: 'A', 13: 'B', 16: 'D', 19: 'E'}


def torchvision_features(depth, batch_norm=False):
    """torchvision's ``vggNN(_bn)().features``, built by torchvision's own layer builder."""
    torch.manual_seed(depth)
    return tv_vgg.make_layers(tv_vgg.cfgs[TV_CFG[depth]], batch_norm=batch_norm)


@pytest.mark.parametrize('depth,with_bn', [(11, False), (13, False), (16, False), (19, False), (16, True)])
def test_conv5_3_equals_torchvision_features(depth, with_bn):
    tv = torchvision_features(depth, with_bn).eval()
    model = MODELS.build(dict(type='VGG', depth=depth, with_bn=with_bn)).eval()
    # Same keys (torchvision's features.N layout), no copying: load_state_dict with strict=True.
    model.load_state_dict({f'features.{k}': v for k, v in tv.state_dict().items()}, strict=True)
    x = torch.rand(1, 3, 72, 88)
    out = model(x)
    assert isinstance(out, tuple) and len(out) == 1
    # torchvision's features without the last max-pool: conv5_x's last ReLU (features[:30] for VGG-16).
    expected = tv[:-1](x)
    assert out[0].shape == (1, 512, 72 // 16, 88 // 16)
    torch.testing.assert_close(out[0], expected, rtol=0, atol=0)
    if depth == 16 and not with_bn:
        assert len(tv) - 1 == 30


def test_stages_strides_and_channels():
    model = VGG(11, out_indices=(0, 1, 2, 3, 4), with_last_pool=True).eval()
    outs = model(torch.rand(2, 3, 64, 96))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 32, 48), (128, 16, 24), (256, 8, 12), (512, 4, 6),
                                                  (512, 2, 3)]
    assert model.out_channels == [64, 128, 256, 512, 512]
    assert VGG(16).out_channels == [512]


def test_frozen_stages_are_the_papers():
    model = VGG(16, frozen_stages=2)
    model.train()
    convs = [(i, m) for i, m in enumerate(model.features) if isinstance(m, torch.nn.Conv2d)]
    trainable = [i for i, m in convs if m.weight.requires_grad]
    # conv1_1, conv1_2, conv2_1, conv2_2 (features 0, 2, 5, 7) frozen; conv3_1 (features.10) and up train.
    assert [i for i, m in convs if not m.weight.requires_grad] == [0, 2, 5, 7]
    assert trainable[0] == 10 and len(trainable) == 9
    model(torch.rand(1, 3, 32, 32))[0].sum().backward()
    assert model.features[7].weight.grad is None and model.features[10].weight.grad is not None
    # Frozen at construction too (an optimizer built before train() must not see them).
    assert not VGG(16, frozen_stages=2).features[0].weight.requires_grad
    bn = VGG(11, with_bn=True, frozen_stages=1)
    bn.train()
    assert not bn.features[1].training and bn.features[5].training is False  # bn_eval: every BN in eval


def test_bad_arguments():
    with pytest.raises(KeyError, match='allowed depths'):
        VGG(15)
    with pytest.raises(ValueError, match='out_indices'):
        VGG(16, num_stages=4, dilations=(1, 1, 1, 1))
    with pytest.raises(ValueError, match='frozen_stages'):
        VGG(16, frozen_stages=6)


def test_pretrained_local_path_and_torchvision_hub_cache(tmp_path, monkeypatch):
    tv = torchvision_features(11)
    state = {f'features.{k}': v for k, v in tv.state_dict().items()}
    state['classifier.0.weight'] = torch.zeros(2, 2)  # a full torchvision file has these: ignored here
    x = torch.rand(1, 3, 48, 48)
    expected = tv.eval()[:-1](x)

    local = tmp_path / 'vgg11_local.pth'
    torch.save(state, local)
    model = VGG(11, init_cfg=dict(type='Pretrained', checkpoint=str(local)))
    model.init_weights()
    torch.testing.assert_close(model.eval()(x)[0], expected, rtol=0, atol=0)

    # torchvision://vgg11 resolves to <TORCH_HOME>/hub/checkpoints/vgg11-8a719046.pth, never a download.
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    model = VGG(11, init_cfg=dict(type='Pretrained', checkpoint='torchvision://vgg11'))
    with pytest.raises(FileNotFoundError, match='vgg11-8a719046.pth'):
        model.init_weights()
    cache = tmp_path / 'torch_home' / 'hub' / 'checkpoints'
    cache.mkdir(parents=True)
    torch.save(state, cache / 'vgg11-8a719046.pth')
    model.init_weights()
    assert osp.isfile(cache / 'vgg11-8a719046.pth')
    torch.testing.assert_close(model.eval()(x)[0], expected, rtol=0, atol=0)


def test_default_init_is_kaiming():
    model = VGG(11)
    model.init_weights()
    w = model.features[0].weight
    # Kaiming normal, fan_out, ReLU gain: std = sqrt(2 / (64 * 3 * 3)).
    assert abs(w.std().item() - (2 / (64 * 9)) ** 0.5) < 0.02
    assert (model.features[0].bias == 0).all()
