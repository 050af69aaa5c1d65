"""Multi-process training and testing on CPU: ``tools/dist_train.sh`` / ``tools/dist_test.sh`` start
2 processes with torchrun, gloo backend (the README's multi-GPU section, minus the GPUs)."""
import glob
import json
import math
import os
import os.path as osp
import socket
import subprocess
import sys

import torch
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_script(*args, timeout=400):
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), PYTHONUNBUFFERED='1',
               OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', *args], cwd=REPO, capture_output=True, text=True, env=env,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{args[0]} failed:\n{out[-6000:]}'
    return out


def test_two_process_train_and_test(tmp_path):
    data, work = str(tmp_path / 'data'), str(tmp_path / 'work')
    subprocess.run([sys.executable, 'tools/make_demo_data.py', '--out', data, '--num-train', '12',
                    '--num-val', '4', '--min-size', '64', '--max-size', '96'], cwd=REPO, check=True)
    options = [f'{key}.dataset.data_root={data}/' for key in
               ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += [f'{key}.ann_file={data}/annotations/val.json'
                for key in ('val_evaluator', 'test_evaluator')]
    options += ['env_cfg.dist_cfg.backend=gloo', 'train_dataloader.batch_size=2',
                'val_dataloader.batch_size=1', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1']

    log = run_script('tools/dist_train.sh', DEMO, '2', '--work-dir', work, '--cfg-options', *options)
    assert 'Distributed training: True' in log
    assert "'backend': 'gloo'" in log
    # Each rank trains on its half of the images (those with boxes): 2 ranks x batch 2 per step,
    # so rank 1 ran every step too (gloo's all-reduce would hang otherwise).
    with open(osp.join(data, 'annotations', 'train.json')) as f:
        num_train = len({a['image_id'] for a in json.load(f)['annotations']})
    iters = math.ceil(math.ceil(num_train / 2) / 2)
    assert f'Epoch(train) [1][{iters}/{iters}]' in log
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == iters
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work, 'epoch_1.pth')
    # One checkpoint, written once (by rank 0), no temporary files left by either rank.
    files = sorted(os.listdir(work))
    assert [f for f in files if f.startswith('epoch')] == ['epoch_1.pth']
    assert not [f for f in files if '.tmp' in f]
    # Validation gathered both ranks' predictions (4 val images, 1 per rank per step).
    assert 'Epoch(val) [1][2/2]' in log and 'coco/bbox_mAP_50' in log

    # 4 val images, 1 per batch, split over 2 ranks: 2 test iterations on each.
    log = run_script('tools/dist_test.sh', DEMO, osp.join(work, 'epoch_1.pth'), '2',
                     '--work-dir', work, '--cfg-options', *options, 'test_dataloader.batch_size=1')
    assert 'Epoch(test) [2/2]' in log and 'coco/bbox_mAP_50' in log
    assert glob.glob(osp.join(work, '*', '*.json'))
