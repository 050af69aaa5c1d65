"""Safe checkpoint loading: a real malicious pickle (its ``__reduce__`` runs ``touch MARKER``) is
refused by every entry point (tools/train.py --resume, load_from, tools/test.py, init_detector,
``Pretrained`` and ``torchvision://`` backbone init) and MARKER is never created; with the opt-in
it loads and MARKER appears, which proves the pickle really would have run. Our checkpoints,
mmengine's and MMDetection model-zoo style files load without any opt-in."""
import os
import os.path as osp
import shlex
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

from rcnn_plugins import cli
from rcnn_plugins.apis import init_detector
from rcnn_plugins.fileio.safe_load import (UNSAFE_ENV, UnsafeCheckpointError, allow_unsafe_load,
                                           load_checkpoint_file)
from rcnn_plugins.models.backbones.resnet import ResNet
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


class Evil:
    """Unpickling this runs ``touch marker`` (what a hostile checkpoint would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {shlex.quote(self.marker)}', )


def write_evil(path, payload, marker):
    """Save ``payload`` (a dict) plus the evil object; return the path."""
    torch.save(dict(payload, evil=Evil(str(marker))), str(path))
    return str(path)


@pytest.fixture(autouse=True)
def no_env_opt_in(monkeypatch):
    monkeypatch.delenv(UNSAFE_ENV, raising=False)


def assert_refusal(message, path):
    assert f'Refusing to load checkpoint {path}' in message
    assert 'posix.system' in message
    assert '--unsafe-load' in message and UNSAFE_ENV in message


# ---- the loader itself -------------------------------------------------------------------------

def test_loader_refuses_then_loads_with_opt_in(tmp_path, monkeypatch):
    marker = tmp_path / 'pwned'
    path = write_evil(tmp_path / 'evil.pth', {'state_dict': {'w': torch.ones(2)}}, marker)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint_file(path)
    assert_refusal(str(err.value), path)
    assert not marker.exists()

    with allow_unsafe_load():
        ckpt = load_checkpoint_file(path)
    assert marker.exists() and torch.equal(ckpt['state_dict']['w'], torch.ones(2))

    marker.unlink()
    monkeypatch.setenv(UNSAFE_ENV, '1')
    load_checkpoint_file(path)
    assert marker.exists()


def test_getattr_is_allowed_only_for_history_buffer_methods(tmp_path):
    class GetattrPrivate:
        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')
    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': GetattrPrivate()}, path)
    with pytest.raises(UnsafeCheckpointError, match='getattr'):
        load_checkpoint_file(path)


def test_mmengine_checkpoint_loads_safely(tmp_path):
    from toy_runner import make_runner
    make_runner(tmp_path, 1, dict(), scores=[0.25]).train()
    path = str(tmp_path / 'epoch_1.pth')
    # Without the allow-list torch itself refuses it (HistoryBuffer, numpy): the list is needed.
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
    ckpt = _load_checkpoint(path, map_location='cpu')   # mmengine's entry, our loader behind it
    buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and np.isfinite(buffer.mean())
    assert buffer.statistics('current') == buffer.current()
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['dataset_meta'] == {'classes': ('toy', )}


def test_mmdetection_zoo_style_and_numpy_meta_load_safely(tmp_path):
    state = OrderedDict(weight=torch.arange(4.))
    meta = dict(CLASSES=('person', 'car'), mmdet_version='2.25.0', config='model = dict()',
                epoch=12, iter=87960, hook_msgs=dict(last_ckpt='epoch_12.pth'),
                seed=np.int64(0), mean=np.array([123.675, 116.28, 103.53]), dtype=np.dtype('float32'))
    path = str(tmp_path / 'faster_rcnn_r50_fpn_1x_coco.pth')
    torch.save({'state_dict': state, 'meta': meta}, path)
    ckpt = load_checkpoint_file(path)
    assert torch.equal(ckpt['state_dict']['weight'], state['weight'])
    assert ckpt['meta']['CLASSES'] == ('person', 'car') and ckpt['meta']['seed'] == 0
    np.testing.assert_array_equal(ckpt['meta']['mean'], meta['mean'])


def test_safetensors_round_trip(tmp_path):
    pytest.importorskip('safetensors', reason='optional: .safetensors weights')
    from rcnn_plugins.fileio.safe_load import save_safetensors
    model = ResNet(depth=18, base_channels=8, init_cfg=None)
    path = str(tmp_path / 'r18.safetensors')
    save_safetensors(model.state_dict(), path)
    other = ResNet(depth=18, base_channels=8, init_cfg=dict(type='Pretrained', checkpoint=path))
    other.init_weights()
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key
    # A whole detector through init_detector.
    detector = init_detector(DEMO, exact=True)
    det_path = str(tmp_path / 'det.safetensors')
    save_safetensors(detector.state_dict(), det_path)
    loaded = init_detector(DEMO, det_path, exact=True)
    for key, value in detector.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


# ---- every entry point -------------------------------------------------------------------------

def test_init_detector(tmp_path):
    marker = tmp_path / 'pwned'
    model = init_detector(DEMO, exact=True)
    path = write_evil(tmp_path / 'det.pth', {'state_dict': model.state_dict(), 'meta': {}}, marker)
    with pytest.raises(UnsafeCheckpointError) as err:
        init_detector(DEMO, path)
    assert_refusal(str(err.value), path)
    assert not marker.exists()
    loaded = init_detector(DEMO, path, unsafe_load=True)
    assert marker.exists()
    assert torch.equal(loaded.state_dict()['rpn_head.rpn_cls.weight'], model.state_dict()['rpn_head.rpn_cls.weight'])


def test_pretrained_backbone_init(tmp_path):
    marker = tmp_path / 'pwned'
    weights = ResNet(depth=18, base_channels=8, init_cfg=None).state_dict()
    path = write_evil(tmp_path / 'r18.pth', {'state_dict': weights}, marker)
    backbone = ResNet(depth=18, base_channels=8, init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(UnsafeCheckpointError):
        backbone.init_weights()
    assert not marker.exists()
    with allow_unsafe_load():
        backbone.init_weights()
    assert marker.exists() and torch.equal(backbone.conv1.weight, weights['conv1.weight'])


def test_torchvision_scheme_backbone_init(tmp_path, monkeypatch):
    """``torchvision://resnet18`` reads the hub cache file through the safe loader too (mmengine's
    own torchvision loader would unpickle it with weights_only=False)."""
    from mmengine.runner.checkpoint import get_torchvision_models
    marker = tmp_path / 'pwned'
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))  # hub cache: $TORCH_HOME/hub/checkpoints
    os.makedirs(tmp_path / 'hub' / 'checkpoints')
    weights = ResNet(depth=18, init_cfg=None).state_dict()
    write_evil(tmp_path / 'hub' / 'checkpoints' / osp.basename(get_torchvision_models()['resnet18']), weights, marker)
    backbone = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18'))
    with pytest.raises(UnsafeCheckpointError):
        backbone.init_weights()
    assert not marker.exists()
    with allow_unsafe_load():
        backbone.init_weights()
    assert marker.exists()


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """(data options, work dir, a real 1-epoch checkpoint) from tools/train.py's code path."""
    root = str(tmp_path_factory.mktemp('safe_data'))
    subprocess.run([sys.executable, 'tools/make_demo_data.py', '--out', root, '--num-train', '2',
                    '--num-val', '2', '--min-size', '64', '--max-size', '64'], cwd=REPO, check=True,
                   capture_output=True, env=dict(os.environ, PYTHONPATH=REPO))
    data = [f'{split}_dataloader.dataset.data_root={root}/' for split in ('train', 'val', 'test')]
    data += [f'{split}_evaluator.ann_file={root}/annotations/val.json' for split in ('val', 'test')]
    data += ['train_dataloader.batch_size=2', 'val_dataloader.batch_size=2', 'default_hooks.logger.interval=1',
             'default_hooks.visualization.draw=False', 'train_cfg.val_interval=10']
    work = str(tmp_path_factory.mktemp('safe_work'))
    cli.train_main([DEMO, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1',
                    'experiment_name=safe_base', *data])
    return data, work, osp.join(work, 'epoch_1.pth')


def evil_copy(trained, tmp_path):
    marker = tmp_path / 'pwned'
    full = torch.load(trained[2], map_location='cpu', weights_only=False)  # our own file
    return write_evil(tmp_path / 'evil_epoch_1.pth', full, marker), marker


@pytest.mark.parametrize('how', ['resume', 'load_from', 'test'])
def test_tools_refuse_and_opt_in(trained, tmp_path, how):
    data, _, _ = trained
    path, marker = evil_copy(trained, tmp_path)
    work = str(tmp_path / 'work')
    if how == 'test':
        main, argv = cli.test_main, [DEMO, path, '--work-dir', work, '--cfg-options', *data]
    elif how == 'resume':   # max_epochs=1: the resumed run has nothing left to train
        main, argv = cli.train_main, [DEMO, '--work-dir', work, '--resume', path,
                                      '--cfg-options', 'train_cfg.max_epochs=1', *data]
    else:
        main, argv = cli.train_main, [DEMO, '--work-dir', work, '--cfg-options', f'load_from={path}',
                                      'train_cfg.max_epochs=1', *data]
    with pytest.raises(SystemExit) as err:
        main(argv + [f'experiment_name=refuse_{how}'])
    assert err.value.code == 2  # bad input
    assert_refusal(str(err.value), path)
    assert not marker.exists()
    at = argv.index('--cfg-options')
    main(argv[:at] + ['--unsafe-load'] + argv[at:] + [f'experiment_name=optin_{how}'])
    assert marker.exists()


def test_train_tool_subprocess_refuses_resume(trained, tmp_path):
    """The real command line: exit code, one message on stderr, nothing executed."""
    data, _, _ = trained
    path, marker = evil_copy(trained, tmp_path)
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', DEMO, '--work-dir', str(tmp_path / 'w'), '--resume', path,
         '--cfg-options', 'train_cfg.max_epochs=2', *data],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert_refusal(proc.stderr.strip().splitlines()[-1], path)
    assert 'Traceback' not in proc.stderr
    assert not marker.exists()
