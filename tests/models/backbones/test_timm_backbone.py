"""TIMMBackbone: timm's feature maps and channels, mmpretrain's key layout and type spelling,
offline pretrained weights."""
import pytest
import torch

timm = pytest.importorskip('timm', reason='TIMMBackbone needs the timm extra: pip install "rcnn_plugins[timm]"')

from mmengine.registry import init_default_scope  # noqa: E402

from rcnn_plugins.models.backbones import TIMMBackbone  # noqa: E402
from rcnn_plugins.registry import MODELS  # noqa: E402


def test_features_equal_timm_model():
    torch.manual_seed(0)
    ours = MODELS.build(dict(type='TIMMBackbone', model_name='resnet18', features_only=True,
                             out_indices=(1, 2, 3, 4))).eval()
    ref = timm.create_model('resnet18', features_only=True, out_indices=(1, 2, 3, 4)).eval()
    ref.load_state_dict({k[len('timm_model.'):]: v for k, v in ours.state_dict().items()})
    assert all(k.startswith('timm_model.') for k in ours.state_dict())
    assert ours.out_channels == [64, 128, 256, 512] and ours.out_strides == [4, 8, 16, 32]
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs, refs = ours(x), ref(x)
    assert [tuple(o.shape) for o in outs] == [(1, c, 64 // s, 96 // s) for c, s in
                                              zip(ours.out_channels, ours.out_strides)]
    for a, b in zip(outs, refs):
        assert torch.equal(a, b)


def test_convnext_tiny_channels_and_bad_out_indices():
    model = TIMMBackbone('convnext_tiny', features_only=True, out_indices=(0, 1, 2, 3))
    assert model.out_channels == [96, 192, 384, 768] and model.out_strides == [4, 8, 16, 32]
    # MMDetection's timm example counts efficientnet's five levels; convnext has four.
    with pytest.raises(ValueError, match=r'feature levels are \[0, 1, 2, 3\] with channels \[40, 80, 160, 320\]'):
        TIMMBackbone('convnext_atto', features_only=True, out_indices=(1, 2, 3, 4))


def test_mmpretrain_spelling():
    import importlib.util
    if importlib.util.find_spec('mmpretrain') is not None:
        pytest.skip('mmpretrain is installed: its own TIMMBackbone answers that spelling')
    init_default_scope('rcnn_plugins')
    model = MODELS.build(dict(type='mmpretrain.TIMMBackbone', model_name='resnet18', features_only=True,
                              out_indices=(2, 3)))
    assert type(model) is TIMMBackbone and model.out_channels == [128, 256]


def test_local_checkpoint_and_offline_pretrained(tmp_path, monkeypatch):
    torch.manual_seed(1)
    # A classification checkpoint in timm's own layout (with the fc head) loads into the feature model.
    source = timm.create_model('resnet18')
    path = tmp_path / 'resnet18.pth'
    torch.save(source.state_dict(), path)
    model = TIMMBackbone('resnet18', features_only=True, checkpoint_path=str(path), out_indices=(4,))
    assert torch.equal(model.state_dict()['timm_model.layer4.1.conv2.weight'], source.layer4[1].conv2.weight)
    model.init_weights()  # keeps the loaded weights
    assert torch.equal(model.state_dict()['timm_model.conv1.weight'], source.conv1.weight)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        TIMMBackbone('resnet18', features_only=True, checkpoint_path=str(tmp_path / 'missing.pth'))
    # pretrained=True with empty caches: an error naming where to put the file, no download.
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hf'))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'torch'))
    import huggingface_hub.constants as hf_constants
    monkeypatch.setattr(hf_constants, 'HF_HUB_CACHE', str(tmp_path / 'hf'))
    with pytest.raises(FileNotFoundError, match='never downloaded.*checkpoint_path'):
        TIMMBackbone('resnet18', features_only=True, pretrained=True)
