"""End to end through the command-line tools, as a user runs them: ``tools/train.py`` (with
validation), ``tools/test.py`` (metrics, --out, --show-dir) and ``tools/train.py --resume``, on a
tiny generated dataset with the demo config."""
import glob
import json
import os
import os.path as osp
import pickle
import re
import subprocess
import sys

import pytest
import torch
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


def run_tool(*args, timeout=300):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, f'{args[0]} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}'
    return proc.stdout + proc.stderr


def data_options(root):
    return [f'train_dataloader.dataset.data_root={root}/',
            f'val_dataloader.dataset.data_root={root}/',
            f'test_dataloader.dataset.data_root={root}/',
            f'val_evaluator.ann_file={root}/annotations/val.json',
            f'test_evaluator.ann_file={root}/annotations/val.json']


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('tiny_demo'))
    run_tool('tools/make_demo_data.py', '--out', root, '--num-train', '8', '--num-val', '4',
             '--min-size', '64', '--max-size', '128')
    return root


def test_train_test_resume(tiny_data, tmp_path):
    work = str(tmp_path / 'work')
    options = data_options(tiny_data) + [
        'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
        'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1', 'randomness.seed=0']

    # 1. Train one epoch, validating at its end.
    log = run_tool('tools/train.py', DEMO, '--work-dir', work,
                   '--cfg-options', 'train_cfg.max_epochs=1', *options)
    assert 'Epoch(val) [1]' in log and 'coco/bbox_mAP_50' in log
    # The RPN's per-level loss lists are logged as their sums (mmengine's parse_losses).
    assert re.search(r'loss_rpn_cls: \d+\.\d+ +loss_rpn_bbox: \d+\.\d+', log), log[-2000:]
    first = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu', weights_only=False)
    iters_per_epoch = first['meta']['iter']
    assert first['meta']['epoch'] == 1 and iters_per_epoch > 0
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work, 'epoch_1.pth')

    # 2. Test that checkpoint: metric table, metrics json, raw results, drawn images.
    out_pkl = str(tmp_path / 'results.pkl')
    log = run_tool('tools/test.py', DEMO, osp.join(work, 'epoch_1.pth'), '--work-dir', work,
                   '--out', out_pkl, '--show-dir', 'vis', '--cfg-options', *data_options(tiny_data))
    assert 'Average Precision' in log and 'coco/bbox_mAP_50' in log
    metric_files = [p for p in glob.glob(osp.join(work, '*', '*.json'))
                    if 'coco/bbox_mAP' in open(p).read()]
    assert metric_files, 'no metrics json written'
    assert 'coco/bbox_mAP_50' in json.load(open(metric_files[-1]))
    with open(out_pkl, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 4 and 'pred_instances' in results[0]
    drawn = glob.glob(osp.join(work, '*', 'vis', '*.png'))
    assert len(drawn) == 4

    # 2b. The fast path (folded BN, channels-last) gives the same metrics.
    log = run_tool('tools/test.py', DEMO, osp.join(work, 'epoch_1.pth'), '--work-dir', work,
                   '--fuse-conv-bn', '--channels-last', '--cfg-options', *data_options(tiny_data))
    fast_files = [p for p in glob.glob(osp.join(work, '*', '*.json'))
                  if 'coco/bbox_mAP' in open(p).read() and p not in metric_files]
    assert len(fast_files) == 1, fast_files
    plain, fast = json.load(open(metric_files[-1])), json.load(open(fast_files[0]))
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50'):
        assert abs(plain[key] - fast[key]) <= 1e-3 + 1e-9, (key, plain[key], fast[key])  # 3-decimal values

    # 3. Resume from last_checkpoint (no path given) into a second epoch.
    log = run_tool('tools/train.py', DEMO, '--work-dir', work, '--resume',
                   '--cfg-options', 'train_cfg.max_epochs=2', *options)
    assert f'resumed epoch: 1, iter: {iters_per_epoch}' in log
    assert 'Epoch(train) [2]' in log and 'Epoch(train) [1]' not in log
    second = torch.load(osp.join(work, 'epoch_2.pth'), map_location='cpu', weights_only=False)
    assert second['meta']['epoch'] == 2
    assert second['meta']['iter'] == 2 * iters_per_epoch
    # AdamW's state went on from the first run's: a fresh optimizer would count only one epoch.
    steps = {float(s['step']) for s in second['optimizer']['state'].values()}
    assert steps == {2.0 * iters_per_epoch}
    assert set(second['optimizer']['state']) == set(first['optimizer']['state'])
    # The schedulers went on too: warm-up counts iterations, cosine counts epochs.
    warmup, cosine = second['param_schedulers']
    assert warmup['last_step'] == 2 * iters_per_epoch
    assert cosine['last_step'] == 2
    assert first['param_schedulers'][1]['last_step'] == 1
    # The weights moved on from the first epoch's.
    name = 'backbone.conv1.weight'
    assert not torch.equal(first['state_dict'][name], second['state_dict'][name])
    # max_keep_ckpts=1 in the demo config: the first epoch's file is pruned after the save.
    assert not osp.exists(osp.join(work, 'epoch_1.pth'))
