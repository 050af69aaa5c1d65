"""Named pretrained checkpoints (open-mmlab://, torchvision://, mmcls://, URLs) resolve to files in
torch's hub cache exactly where mmengine would read them, are never downloaded, and a missing one
stops with the exact path to place. File names below are the URL file names in mmengine's tables,
written out here so a changed mapping shows up."""
import os

import pytest
import torch

from rcnn_plugins.fileio import install_safe_loading
from rcnn_plugins.models.backbones import ResNet
from rcnn_plugins.models.pretrained import check_checkpoint_cached, resolve_checkpoint

NAMES = {
    'open-mmlab://resnext101_32x4d': 'resnext101_32x4d-a5af3160.pth',
    'open-mmlab://detectron2/resnet50_caffe': 'resnet50_msra-5891d200.pth',
    'torchvision://resnext50_32x4d': 'resnext50_32x4d-7cdf4587.pth',
    'open-mmlab://regnetx_3.2gf': 'regnetx_3.2gf-c2599b0f.pth',
    'open-mmlab://msra/hrnetv2_w18': 'hrnetv2_w18-00eb2006.pth',
    'open-mmlab://res2net101_v1d_26w_4s': 'res2net101_v1d_26w_4s_mmdetv2-f0a600f9.pth',
    'open-mmlab://resnest50': 'resnest50_d2-7497a55b.pth',
    'open-mmlab://jhu/resnet50_gn_ws': 'resnet50_gn_ws-15beedd8.pth',
    'openmmlab://resnext101_32x4d': 'resnext101_32x4d-a5af3160.pth',
}


@pytest.fixture(autouse=True)
def _safe_schemes():
    install_safe_loading()  # our CheckpointLoader schemes (an explicit call, as every entry point makes)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError('tried to download')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    return tmp_path


@pytest.mark.parametrize('name', sorted(NAMES))
def test_missing_named_checkpoint_names_exact_path(torch_home, name):
    expected = os.path.join(str(torch_home), 'hub', 'checkpoints', NAMES[name])
    assert resolve_checkpoint(name)[1] == expected
    with pytest.raises(FileNotFoundError) as info:
        check_checkpoint_cached(name)
    assert f'Place that file at {expected}' in str(info.value)


def test_deprecated_openmmlab_name_is_mapped(torch_home):
    # mmengine maps the old name open-mmlab://resnet50_caffe to detectron/resnet50_caffe.
    url, path = resolve_checkpoint('open-mmlab://resnet50_caffe')
    assert url == resolve_checkpoint('open-mmlab://detectron/resnet50_caffe')[0]
    with pytest.raises(KeyError, match="unknown openmmlab checkpoint 'open-mmlab://resnext101_32x5d'; did you mean"):
        resolve_checkpoint('open-mmlab://resnext101_32x5d')


def test_local_paths_are_not_resolved():
    assert resolve_checkpoint('/some/where/model.pth') is None
    check_checkpoint_cached('/some/where/model.pth')  # the loader reports a missing local file itself


@pytest.mark.parametrize('name', ['open-mmlab://detectron2/resnet50_caffe', 'torchvision://resnext50_32x4d',
                                  'https://download.openmmlab.com/x/some_weights-0123abcd.pth'])
def test_cached_file_loads_through_init_cfg(torch_home, name):
    torch.manual_seed(0)
    src = ResNet(depth=18, base_channels=8)
    path = resolve_checkpoint(name)[1]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(src.state_dict(), path)
    model = ResNet(depth=18, base_channels=8, init_cfg=dict(type='Pretrained', checkpoint=name))
    model.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_loader_never_downloads_a_missing_url(torch_home):
    from mmengine.runner.checkpoint import CheckpointLoader
    expected = os.path.join(str(torch_home), 'hub', 'checkpoints', 'resnext50_32x4d-7cdf4587.pth')
    with pytest.raises(FileNotFoundError, match=f'place the file at {expected}'):
        CheckpointLoader.load_checkpoint('torchvision://resnext50_32x4d')
