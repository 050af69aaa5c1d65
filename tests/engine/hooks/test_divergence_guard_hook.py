"""DivergenceGuardHook: a NaN loss or exploding gradients stop the run before the optimizer step
(the weights and the last checkpoint stay good), or skip the batch, or lower the LR.

Toy runs check each action against an independent reference (a run that never saw the bad
batch); a real diverging detector run (the demo config, lr jumping to 1e4 after epoch 1) goes
through ``tools/train.py`` in a subprocess and must exit non-zero with the message, keeping
epoch_1.pth intact.
"""
import math
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Dataset

from rcnn_plugins import cli
from rcnn_plugins.engine.hooks import DivergenceError, DivergenceGuardHook
from rcnn_plugins.engine import setup_runtime
from rcnn_plugins.fileio.safe_load import load_checkpoint_file
from rcnn_plugins.registry import HOOKS

from toy_runner import ToyModel
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


class ToyData(Dataset):
    """Samples ``x = (v, 1), y = v * scale`` for ``v`` in ``values`` (read in order: the loaders
    do not shuffle). ``x`` is NaN (so is the loss) for the indices in ``bad``, and for every read
    after the first ``nan_after`` reads."""

    def __init__(self, values, bad=(), nan_after=None, scale=1.):
        self.values, self.bad, self.nan_after, self.scale = list(values), set(bad), nan_after, scale
        self.reads = 0

    def __len__(self):
        return len(self.values)

    def __getitem__(self, i):
        self.reads += 1
        nan = i in self.bad or (self.nan_after is not None and self.reads > self.nan_after)
        v = float(self.values[i])
        return dict(inputs=torch.tensor([float('nan') if nan else v, 1.0]),
                    data_samples=torch.tensor([v * self.scale]))


def toy_runner(work_dir, data, guard, max_epochs=2, clip_grad=None, name='toy'):
    setup_runtime()  # what every entry point does: safe checkpoint loading for resume
    torch.manual_seed(0)
    optim = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
    if clip_grad:
        optim['clip_grad'] = clip_grad
    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=DataLoader(data, batch_size=2, collate_fn=pseudo_collate),
        optim_wrapper=optim,
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           guard=dict(type='DivergenceGuardHook', **guard)),
        default_scope='rcnn_plugins', experiment_name=f'guard_{name}_{osp.basename(str(work_dir))}')


def weights(runner):
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_registered_and_on_by_default():
    from mmengine.config import Config
    assert HOOKS.get('DivergenceGuardHook') is DivergenceGuardHook
    guard = Config.fromfile(DEMO).default_hooks.divergence_guard
    assert guard.type == 'DivergenceGuardHook' and guard.action == 'stop'


def test_stop_before_the_step_keeps_weights_and_checkpoint(tmp_path):
    # Epoch 1 fine (checkpoint), then epoch 2's second batch has a NaN loss.
    runner = toy_runner(tmp_path, ToyData(range(4), nan_after=6), dict(), max_epochs=2, name='stop')
    with pytest.raises(DivergenceError) as err:
        runner.train()
    message = str(err.value)
    first = osp.join(tmp_path, 'epoch_1.pth')
    assert message.startswith('Training stopped: non-finite loss at iteration 4 (epoch 2): loss=nan; ')
    assert f'the last checkpoint, {first}, is kept' in message
    assert 'clip_grad=dict(max_norm=35, norm_type=2)' in message
    # Iterations 1-3 stepped, iteration 4 did not: exactly the weights of 3 steps over 0,1,2,3,0,1.
    ref = toy_runner(tmp_path / 'ref', ToyData([0, 1, 2, 3, 0, 1]), dict(), max_epochs=1, name='stopref')
    ref.train()
    for key, value in weights(ref).items():
        assert torch.equal(weights(runner)[key], value), key
    # No checkpoint written over the good one, nothing newer.
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth')) == ['epoch_1.pth']
    assert open(osp.join(tmp_path, 'last_checkpoint')).read() == first
    assert load_checkpoint_file(first)['meta']['epoch'] == 1


def test_skip_equals_never_seeing_the_batch(tmp_path):
    # Samples 2, 3 (the second batch of each epoch) are NaN: skipping them must give exactly the
    # weights of a run over samples 0, 1 only (same good steps, in the same order).
    skip = toy_runner(tmp_path / 'skip', ToyData(range(4), bad={2}), dict(action='skip'), max_epochs=3, name='skip')
    skip.train()
    ref = toy_runner(tmp_path / 'ref', ToyData(range(2)), dict(), max_epochs=3, name='ref2')
    ref.train()
    for key, value in weights(ref).items():
        assert torch.equal(weights(skip)[key], value), key
    # The skipped batches' NaN losses are kept out of the logged history.
    history = skip.message_hub.get_scalar('train/loss').data[0]
    assert len(history) == 3 and all(math.isfinite(v) for v in history)


def test_lower_lr_divides_the_learning_rate(tmp_path):
    runner = toy_runner(tmp_path, ToyData(range(4), bad={2}), dict(action='lower_lr', lr_factor=4), max_epochs=2,
                        name='lower')
    runner.train()
    # Two bad iterations (one per epoch): 0.01 / 4 / 4.
    assert runner.optim_wrapper.optimizer.param_groups[0]['lr'] == pytest.approx(0.01 / 16)
    assert all(torch.isfinite(v).all() for v in weights(runner).values())


def test_skip_gives_up_after_max_consecutive(tmp_path):
    runner = toy_runner(tmp_path, ToyData(range(4), bad={0, 2}), dict(action='skip', max_consecutive=3), max_epochs=5,
                        name='giveup')
    with pytest.raises(DivergenceError, match=r'Training stopped \(3 bad iterations in a row\)'):
        runner.train()
    assert runner.iter == 2  # stopped in iteration 3


def test_exploding_gradients(tmp_path):
    # Targets of 1e6: finite loss, gradient norm ~1e7.
    runner = toy_runner(tmp_path, ToyData(range(4), scale=1e6), dict(max_grad_norm=1e4), name='explode')
    with pytest.raises(DivergenceError) as err:
        runner.train()
    assert 'gradients exploded at iteration 1 (epoch 1): gradient norm' in str(err.value)
    assert 'gradient norm 1.732e+06 > max_grad_norm=10000;' in str(err.value)  # sqrt(3) * 1e6
    assert 'clip gradients with optim_wrapper.clip_grad=dict(max_norm=35, norm_type=2)' in str(err.value)
    # With clip_grad configured, large but finite norms are clipped, not an error.
    clipped = toy_runner(tmp_path / 'clip', ToyData(range(4), scale=1e6), dict(max_grad_norm=1e4),
                         clip_grad=dict(max_norm=35, norm_type=2), name='clipped')
    clipped.train()
    assert clipped.iter == 4


def test_invalid_arguments():
    with pytest.raises(ValueError, match="action must be 'stop', 'skip' or 'lower_lr'"):
        DivergenceGuardHook(action='ignore')


# ---- a real diverging detector run ---------------------------------------------------------------

DIVERGING_CONFIG = """
_base_ = {demo!r}
data_root = {root!r}
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=4, val_interval=100)
# Epoch 1 at lr 1e-3 (a good checkpoint), then lr 1e4 without clipping: the run diverges.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=0, _delete_=True),
                     clip_grad=None)
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[1], gamma=1e7)]
default_hooks = dict(logger=dict(interval=1), visualization=dict(draw=False),
                     checkpoint=dict(interval=1, save_best=None, max_keep_ckpts=-1))
"""


@pytest.fixture(scope='module')
def diverging_config(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('div_data'))
    subprocess.run([sys.executable, 'tools/make_demo_data.py', '--out', root, '--num-train', '4',
                    '--num-val', '2', '--min-size', '64', '--max-size', '96'], cwd=REPO, check=True,
                   capture_output=True, env=dict(os.environ, PYTHONPATH=REPO))
    path = osp.join(root, 'diverging.py')
    with open(path, 'w') as f:
        f.write(DIVERGING_CONFIG.format(demo=DEMO, root=root + '/'))
    return root, path


def assert_epoch_1_kept(work):
    first = osp.join(work, 'epoch_1.pth')
    assert open(osp.join(work, 'last_checkpoint')).read() == first
    assert sorted(f for f in os.listdir(work) if f.endswith('.pth') or '.tmp' in f) == ['epoch_1.pth']
    ckpt = load_checkpoint_file(first)
    assert ckpt['meta']['epoch'] == 1
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values())


def test_diverging_run_stops_with_exploding_gradients(diverging_config, tmp_path):
    root, config = diverging_config
    work = str(tmp_path / 'work')
    proc = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir', work], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'))
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: Training stopped: gradients exploded at iteration 4 (epoch 2)'), last
    assert f'batch images: {root}/train/' in last and '.png' in last
    assert 'optim_wrapper.clip_grad=dict(max_norm=35, norm_type=2)' in last
    assert 'Traceback' not in proc.stderr
    assert_epoch_1_kept(work)


def test_diverging_run_stops_on_nan_loss(diverging_config, tmp_path):
    """Without the gradient check the weights blow up and the loss turns NaN: the loss check
    names the terms and stops before a NaN step (epoch 2's finite-but-huge weights are saved,
    the NaN ones never are)."""
    root, config = diverging_config
    work = str(tmp_path / 'work')
    with pytest.raises(SystemExit) as err:
        cli.train_main([config, '--work-dir', work, '--cfg-options',
                        'default_hooks.divergence_guard.max_grad_norm=None', 'experiment_name=div_nan'])
    assert err.value.code == 1  # a failure, not bad input
    message = str(err.value)
    assert message.startswith('error: Training stopped: non-finite loss at iteration')
    assert 'loss_cls=nan' in message and 'loss_rpn_cls=nan' in message and f'{root}/train/' in message
    last = open(osp.join(work, 'last_checkpoint')).read()
    assert f'the last checkpoint, {last}, is kept' in message
    ckpt = load_checkpoint_file(last)
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values())
