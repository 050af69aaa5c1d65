"""Bit-exact resume: a training run killed with SIGKILL and resumed with ``--resume`` ends with the
same weights and optimizer state as the same run left alone (``torch.equal``, every tensor).

Each end-to-end case trains a tiny Faster R-CNN (ResNet-18 at a quarter width, 64-112 px
generated images, random flips on) through ``tools/train.py`` in subprocesses: once through, then
once killed for real (``os.kill(pid, SIGKILL)`` on the training process) right after a checkpoint
was recorded and before the next one, then resumed. The unit tests below check the pieces the
resume relies on without a Runner.
"""
import itertools
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler

from rcnn_plugins.datasets import CocoDataset
from rcnn_plugins.datasets.samplers import AspectRatioBatchSampler, ResumableBatchSampler, SeededIndices
from rcnn_plugins.engine.loops.resumable_loader import epoch_batches, resumable_loader
from rcnn_plugins.rng import capture_rng_state, preserved_rng, restore_rng_state, sample_seed
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
ENV = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')

# The demo config, shrunk: 16-channel ResNet-18, 112 px images, no validation, a checkpoint every
# 3 iterations. {schedule} and {hooks} are filled in per case.
CONFIG = """
_base_ = {demo!r}
data_root = {data!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(112, 112), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=32),
                  bbox_head=dict(in_channels=32, fc_out_channels=64)))
train_dataloader = dict(batch_size=2, num_workers={num_workers}, persistent_workers={persistent},
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5)]
randomness = dict(seed=0)
log_processor = dict(window_size=1, by_epoch={by_epoch})
{schedule}
{hooks}
"""
EPOCHS = "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=100)"
ITERS = "train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=9, val_interval=100)"
HOOKS = """default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(_delete_=True, type='CheckpointHook', interval=3, by_epoch=False),
    visualization=dict(draw=False))"""
# The same hooks without RNGStateHook (mmengine cannot drop a default hook it does not know).
HOOKS_WITHOUT_RNG = """default_hooks = dict(
    _delete_=True,
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False),
    sampler_seed=dict(type='DistSamplerSeedHook'))"""


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('resume_data'))
    # 10 images of 64-112 px (9 with boxes: 5 batches of 2 per epoch), wide and tall.
    subprocess.run([sys.executable, 'tools/make_demo_data.py', '--out', root, '--num-train', '10',
                    '--num-val', '1', '--min-size', '64', '--max-size', '112', '--max-obj', '48'],
                   cwd=REPO, check=True, capture_output=True)
    return root + '/'


def write_config(path, data, schedule=EPOCHS, num_workers=0, hooks=HOOKS) -> str:
    with open(path, 'w') as f:
        f.write(CONFIG.format(demo=DEMO, data=data, num_workers=num_workers,
                              persistent=num_workers > 0, by_epoch=schedule == EPOCHS,
                              schedule=schedule, hooks=hooks))
    return str(path)


def train(config, work, *args) -> str:
    proc = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', work, *args],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


def train_and_kill(config, work, after: str, before: str) -> None:
    """Start training, SIGKILL the process as soon as ``last_checkpoint`` names ``after``, and
    check that the kill landed before checkpoint ``before`` was written."""
    os.makedirs(work, exist_ok=True)
    log = open(osp.join(work, 'killed_run.log'), 'w')
    proc = subprocess.Popen([sys.executable, 'tools/train.py', config, '--work-dir', work],
                            cwd=REPO, env=ENV, stdout=log, stderr=subprocess.STDOUT)
    last = osp.join(work, 'last_checkpoint')
    deadline = time.time() + 600
    try:
        while not (osp.exists(last) and open(last).read().endswith(after)):
            assert proc.poll() is None, f'training ended before {after}: ' \
                + open(osp.join(work, 'killed_run.log')).read()[-3000:]
            assert time.time() < deadline, f'no {after} after 600 s'
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert osp.isfile(osp.join(work, after)) and not osp.exists(osp.join(work, before))


def load(path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)


def tensors_equal(a, b, where='') -> None:
    """Assert two nested containers of tensors / numbers are equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            tensors_equal(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            tensors_equal(x, y, f'{where}[{i}]')
    else:
        assert a == b, where


def assert_same_training(path_a, path_b) -> None:
    a, b = load(path_a), load(path_b)
    assert a['meta']['iter'] == b['meta']['iter']
    tensors_equal(a['state_dict'], b['state_dict'], 'state_dict')
    tensors_equal(a['optimizer'], b['optimizer'], 'optimizer')
    tensors_equal(a['param_schedulers'], b['param_schedulers'], 'param_schedulers')


def max_weight_difference(path_a, path_b) -> float:
    a, b = load(path_a)['state_dict'], load(path_b)['state_dict']
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.fixture(scope='module')
def epoch_runs(tiny_data, tmp_path_factory):
    """Epoch schedule, 2 epochs of 5 batches, checkpoints every 3 iterations, main-process data
    loading: the uninterrupted run's work dir and the work dir of a run killed after iter_3.pth
    (the middle of epoch 1)."""
    root = tmp_path_factory.mktemp('epoch_runs')
    config = write_config(root / 'config.py', tiny_data)
    train(config, str(root / 'full'))
    train_and_kill(config, str(root / 'killed'), 'iter_3.pth', 'iter_6.pth')
    return root, config


def test_epoch_schedule_resumes_mid_epoch_bit_exact(epoch_runs):
    root, config = epoch_runs
    work = str(root / 'killed')
    log = train(config, work, '--resume')
    assert 'resumed epoch: 0, iter: 3' in log
    assert 'Restored the torch, numpy, random (and CUDA) RNG states' in log
    # Continued inside epoch 1 at its 4th batch; mmengine's loop would restart the epoch at 1/5.
    assert 'Epoch(train) [1][4/5]' in log and 'Epoch(train) [1][1/5]' not in log
    assert_same_training(root / 'full' / 'iter_10.pth', osp.join(work, 'iter_10.pth'))


def test_resume_without_rng_restore_differs(epoch_runs, tiny_data, tmp_path):
    """The comparison above can fail: the same resume without RNGStateHook ends elsewhere (the
    RPN / RoI samplers draw other anchors and proposals)."""
    root, _ = epoch_runs
    work = str(tmp_path / 'no_rng')
    os.makedirs(work)
    ckpt = osp.join(work, 'iter_3.pth')
    torch.save(load(root / 'killed' / 'iter_3.pth'), ckpt)
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(ckpt)
    config = write_config(tmp_path / 'config.py', tiny_data, hooks=HOOKS_WITHOUT_RNG)
    log = train(config, work, '--resume')
    assert 'resumed epoch: 0, iter: 3' in log and 'Restored the torch' not in log
    assert max_weight_difference(root / 'full' / 'iter_10.pth', osp.join(work, 'iter_10.pth')) > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize('num_workers', [2])
def test_epoch_schedule_resumes_mid_epoch_with_workers(tiny_data, tmp_path, num_workers):
    """Worker processes: the resumed run's workers are new and start at batch 4, yet every
    sample gets the flip it got in the uninterrupted run (per-sample seeds)."""
    config = write_config(tmp_path / 'config.py', tiny_data, num_workers=num_workers)
    train(config, str(tmp_path / 'full'))
    work = str(tmp_path / 'killed')
    train_and_kill(config, work, 'iter_3.pth', 'iter_6.pth')
    log = train(config, work, '--resume')
    assert 'resumed epoch: 0, iter: 3' in log and 'Epoch(train) [1][4/5]' in log
    assert_same_training(tmp_path / 'full' / 'iter_10.pth', osp.join(work, 'iter_10.pth'))


@pytest.mark.slow
def test_workers_do_not_change_training(epoch_runs, tiny_data, tmp_path):
    """Augmentations depend on the seed, the epoch and the image only: loading in 2 worker
    processes trains exactly as loading in the main process."""
    root, _ = epoch_runs
    config = write_config(tmp_path / 'config.py', tiny_data, num_workers=2)
    train(config, str(tmp_path / 'workers'))
    assert_same_training(root / 'full' / 'iter_10.pth', tmp_path / 'workers' / 'iter_10.pth')


@pytest.mark.slow
def test_iteration_schedule_resumes_bit_exact(tiny_data, tmp_path):
    """Iteration schedule, 9 iterations over 5-batch passes: killed after iter_6 (batch 2 of
    the second pass), resumed without replaying the 6 trained batches."""
    config = write_config(tmp_path / 'config.py', tiny_data, schedule=ITERS)
    train(config, str(tmp_path / 'full'))
    work = str(tmp_path / 'killed')
    train_and_kill(config, work, 'iter_6.pth', 'iter_9.pth')
    log = train(config, work, '--resume')
    assert 'resumed epoch: 0, iter: 6' in log and 'Advance dataloader' not in log
    assert 'Iter(train) [7/9]' in log and 'Iter(train) [6/9]' not in log
    assert_same_training(tmp_path / 'full' / 'iter_9.pth', osp.join(work, 'iter_9.pth'))


# Unit tests of the pieces -------------------------------------------------------------------

def test_rng_state_round_trip_loads_weights_only(tmp_path):
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    np.random.randn()  # leaves a cached Gaussian in numpy's state
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), np.random.randn(), random.random())
    # Through a file read the way a safe loader reads it: no numpy class needed.
    torch.save(dict(rng_state=state), tmp_path / 'rng.pth')
    restored = torch.load(tmp_path / 'rng.pth', weights_only=True)['rng_state']
    torch.manual_seed(2)
    np.random.seed(2)
    random.seed(2)
    restore_rng_state(restored)
    again = (torch.rand(3), np.random.rand(3), np.random.randn(), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2:] == again[2:]


def test_preserved_rng_leaves_streams_alone():
    torch.manual_seed(3)
    np.random.seed(3)
    reference = (torch.rand(2), np.random.rand(2))
    torch.manual_seed(3)
    np.random.seed(3)
    with preserved_rng():
        torch.rand(100), np.random.rand(100), random.random()
    assert torch.equal(torch.rand(2), reference[0]) and np.array_equal(np.random.rand(2), reference[1])


class _Sizes(torch.utils.data.Dataset):
    """Indices only, with image sizes: 13 images, every third one tall."""

    def __len__(self):
        return 13

    def get_data_info(self, idx):
        return dict(width=40, height=60) if idx % 3 == 0 else dict(width=60, height=40)


def test_resumable_batch_sampler_skips_batches_and_seeds_samples():
    sampler = DefaultSampler(_Sizes(), shuffle=True, seed=5)
    batches = ResumableBatchSampler(AspectRatioBatchSampler(sampler, batch_size=2), seed=5)
    assert batches.sampler is sampler and batches.batch_size == 2 and len(batches) == 7
    batches.set_epoch(1)
    full = list(batches)
    assert len(full) == 7 and all(isinstance(b, SeededIndices) for b in full)
    assert sorted(i for b in full for i in b) == list(range(13))
    # The seeds are a function of (seed, epoch, index) only.
    assert [b.seeds for b in full] == [[sample_seed(5, 1, i) for i in b] for b in full]
    assert sample_seed(5, 1, 0) != sample_seed(5, 2, 0) != sample_seed(6, 1, 0)
    # A start batch drops exactly the first batches of the same epoch, for every iter() until
    # it is set again (torch's multi-worker iterator calls iter() twice as it starts).
    batches.start_at(4)
    assert [list(b) for b in batches] == [list(b) for b in full[4:]]
    assert [list(b) for b in batches] == [list(b) for b in full[4:]]
    batches.start_at(0)
    assert [list(b) for b in batches] == [list(b) for b in full]
    # Another epoch: reshuffled, other seeds.
    batches.set_epoch(2)
    assert [list(b) for b in batches] != [list(b) for b in full]
    with pytest.raises(ValueError, match='start batch must be >= 0'):
        batches.start_at(-1)


def test_resumed_workers_start_at_the_resume_batch(coco_dir):
    """Through a real multi-worker DataLoader as the training loops build it."""
    data_root, ann_file = coco_dir
    dataset = CocoDataset(data_root=data_root, ann_file=ann_file, data_prefix=dict(img='images/'),
                          metainfo=dict(classes=('person', 'car', 'dog')),
                          pipeline=[dict(type='LoadImageFromFile'), dict(type='PackDetInputs')])
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2,
                                         collate_fn=lambda batch: batch)
    loader = resumable_loader(loader, seed=0)
    ids = [[s['data_samples'].img_id for s in b] for b in epoch_batches(loader, 0)]
    assert len(ids) == len(dataset)
    assert [[s['data_samples'].img_id for s in b] for b in epoch_batches(loader, 0, 2)] == ids[2:]


def test_resumable_batch_sampler_over_an_endless_sampler():
    batches = ResumableBatchSampler(
        torch.utils.data.BatchSampler(InfiniteSampler(_Sizes(), seed=3), 2, False), seed=3)
    stream = list(itertools.islice(batches, 20))
    # Passes over the data count as epochs for the seeds: image 0 gets a new seed each pass.
    assert stream[0].seeds[0] == sample_seed(3, 0, stream[0][0])
    assert stream[7].seeds[0] == sample_seed(3, 1, stream[7][0])
    fresh = ResumableBatchSampler(
        torch.utils.data.BatchSampler(InfiniteSampler(_Sizes(), seed=3), 2, False), seed=3)
    fresh.start_at(9)  # beyond one pass: an endless stream has no epoch end
    resumed = list(itertools.islice(fresh, 11))
    assert [list(b) for b in resumed] == [list(b) for b in stream[9:]]
    assert [b.seeds for b in resumed] == [b.seeds for b in stream[9:]]


def test_dataset_runs_each_sample_under_its_seed(coco_dir):
    data_root, ann_file = coco_dir
    dataset = CocoDataset(data_root=data_root, ann_file=ann_file, data_prefix=dict(img='images/'),
                          metainfo=dict(classes=('person', 'car', 'dog')),
                          pipeline=[dict(type='LoadImageFromFile'),
                                    dict(type='LoadAnnotations', with_bbox=True),
                                    dict(type='RandomFlip', prob=0.5),
                                    dict(type='PackDetInputs')])
    indices = list(range(len(dataset))) * 4
    seeds = list(range(100, 100 + len(indices)))

    def flips(outer_seed):
        np.random.seed(outer_seed)
        samples = dataset.__getitems__(SeededIndices(indices, seeds))
        return [s['data_samples'].metainfo['flip'] for s in samples]

    first = flips(0)
    assert first == flips(1)  # whatever the process's own random state
    assert True in first and False in first
    # ... and the process's stream is as if nothing had been loaded.
    np.random.seed(7)
    expected = np.random.rand()
    np.random.seed(7)
    dataset.__getitems__(SeededIndices(indices, seeds))
    assert np.random.rand() == expected
    # Plain lists (no seeds) load as dataset[idx] does.
    assert len(dataset.__getitems__([0, 1])) == 2
