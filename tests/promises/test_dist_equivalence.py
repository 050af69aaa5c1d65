"""Distributed training equals single-process training, and a dead rank stops the others.

1. 2 CPU processes (``tools/dist_train.sh``: torchrun + gloo) with 1 image each per step train to
   the same weights (1e-5) as 1 process with 2 images per step: same seed, frozen BN, SGD.
   ``DefaultSampler(shuffle=False)`` gives rank r the images r, r + 2, r + 4, ...: step s trains
   images 2s and 2s + 1 in both set-ups.

   What has to be held equal for that, and why (README "Resume and distributed"): MMDetection
   normalises each head's loss by the number of anchors / RoIs *sampled on that rank*
   (``avg_factor``) and DDP then averages the gradients over the ranks, so 2 ranks give
   ``(S0 / N0 + S1 / N1) / 2`` where 1 process gives ``(S0 + S1) / (N0 + N1)``: equal only when
   ``N0 == N1``. Each step therefore trains two copies of one image (different files and
   dataset indices), the samplers keep every candidate (``num`` above the number of anchors and
   proposals, so no random subset either) and the flip is off (a flipped copy samples other
   anchors). BN layers are in eval mode (``norm_eval``): batch statistics over 2 images are not
   those over 1.
2. A rank killed with SIGKILL in the middle of training makes the other exit with an error
   within the process group's timeout (``env_cfg.dist_cfg.timeout``), instead of waiting in its
   next all-reduce forever.
"""
import json
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from repo_paths import REPO_ROOT

REPO = REPO_ROOT
DEMO = osp.join(REPO, 'configs', 'faster_rcnn', 'faster-rcnn_r18_fpn_demo.py')
ENV = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')

CONFIG = """
_base_ = {demo!r}
data_root = {data!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='PackDetInputs'),
]
model = dict(
    backbone=dict(base_channels=16, norm_eval=True),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=32),
                  bbox_head=dict(in_channels=32, fc_out_channels=64)),
    train_cfg=dict(rpn=dict(sampler=dict(num=100000)), rcnn=dict(sampler=dict(num=100000))))
train_dataloader = dict(
    batch_size={batch_size}, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(data_root=data_root, ann_file='annotations/pairs.json', pipeline=train_pipeline))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = []
train_cfg = dict(max_epochs={max_epochs}, val_interval=1000)
env_cfg = dict(dist_cfg=dict(backend='gloo', timeout={timeout}))
randomness = dict(seed=0)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, save_best=None),
                     visualization=dict(draw=False))
"""


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def pair_data(tmp_path_factory):
    """3 square 96 px images with boxes, each listed twice (as two files): 6 images."""
    root = str(tmp_path_factory.mktemp('pairs'))
    subprocess.run([sys.executable, 'tools/make_demo_data.py', '--out', root, '--num-train', '8',
                    '--num-val', '1', '--min-size', '96', '--max-size', '96', '--max-obj', '48'],
                   cwd=REPO, check=True, capture_output=True)
    with open(osp.join(root, 'annotations', 'train.json')) as f:
        coco = json.load(f)
    with_boxes = sorted({a['image_id'] for a in coco['annotations']})[:3]
    images, annotations = [], []
    for image in coco['images']:
        if image['id'] not in with_boxes:
            continue
        for copy in range(2):
            new_id = len(images) + 1
            file_name = f'copy{copy}_{image["file_name"]}'
            shutil.copy(osp.join(root, 'train', image['file_name']), osp.join(root, 'train', file_name))
            images.append(dict(image, id=new_id, file_name=file_name))
            annotations += [dict(a, id=len(annotations) + k + 1, image_id=new_id)
                            for k, a in enumerate(a for a in coco['annotations'] if a['image_id'] == image['id'])]
    with open(osp.join(root, 'annotations', 'pairs.json'), 'w') as f:
        json.dump(dict(coco, images=images, annotations=annotations), f)
    return root + '/'


def write_config(path, data, batch_size, max_epochs=1, timeout=60) -> str:
    with open(path, 'w') as f:
        f.write(CONFIG.format(demo=DEMO, data=data, batch_size=batch_size, max_epochs=max_epochs,
                              timeout=timeout))
    return str(path)


def run(args, env=ENV, timeout=600) -> str:
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


@pytest.mark.slow
def test_two_processes_train_like_one(pair_data, tmp_path):
    """3 steps of 2 images: 1 process, then 2 processes; every weight and momentum to 1e-5."""
    one = write_config(tmp_path / 'one.py', pair_data, batch_size=2)
    two = write_config(tmp_path / 'two.py', pair_data, batch_size=1)
    log = run([sys.executable, 'tools/train.py', one, '--work-dir', str(tmp_path / 'one')])
    assert 'Epoch(train) [1][3/3]' in log
    log = run(['bash', 'tools/dist_train.sh', two, '2', '--work-dir', str(tmp_path / 'two')],
              env=dict(ENV, PYTHON=sys.executable, PORT=str(free_port())))
    assert 'Distributed training: True' in log and 'Epoch(train) [1][3/3]' in log
    assert "'timeout': 60" in log  # the process group got the configured timeout

    a = torch.load(tmp_path / 'one' / 'epoch_1.pth', map_location='cpu', weights_only=False)
    b = torch.load(tmp_path / 'two' / 'epoch_1.pth', map_location='cpu', weights_only=False)
    assert a['state_dict'].keys() == b['state_dict'].keys()
    worst = 0.0
    for key, value in a['state_dict'].items():
        torch.testing.assert_close(b['state_dict'][key], value, rtol=0, atol=1e-5, msg=key)
        worst = max(worst, (b['state_dict'][key].double() - value.double()).abs().max().item())
    print(f'largest weight difference, 2 processes vs 1: {worst:.2e}')
    momentum_a = [s['momentum_buffer'] for s in a['optimizer']['state'].values()]
    momentum_b = [s['momentum_buffer'] for s in b['optimizer']['state'].values()]
    assert len(momentum_a) == len(momentum_b) == len(a['optimizer']['param_groups'][0]['params'])
    for m_a, m_b in zip(momentum_a, momentum_b):
        torch.testing.assert_close(m_b, m_a, rtol=0, atol=1e-5)
    # It trained: every step moved the weights (SGD momentum holds the gradients' sum).
    assert sum(m.abs().sum().item() for m in momentum_a) > 1


@pytest.mark.parametrize('how', [
    'killed',
    # A stopped (hung) rank keeps its sockets open: only the timeout ends the wait.
    pytest.param('hung', marks=pytest.mark.slow)])
def test_dead_rank_stops_the_other(pair_data, tmp_path, how):
    """Two ranks started by hand (no torchrun agent to clean up after them): SIGKILL (or
    SIGSTOP) rank 1 while both train; rank 0 must exit non-zero with an error within the
    timeout."""
    timeout = 20
    config = write_config(tmp_path / 'long.py', pair_data, batch_size=1, max_epochs=1000,
                          timeout=timeout)
    port = str(free_port())
    procs, logs = [], []
    for rank in range(2):
        logs.append(open(tmp_path / f'rank{rank}.log', 'w+'))
        env = dict(ENV, MASTER_ADDR='127.0.0.1', MASTER_PORT=port, RANK=str(rank),
                   LOCAL_RANK=str(rank), WORLD_SIZE='2')
        procs.append(subprocess.Popen(
            [sys.executable, 'tools/train.py', config, '--launcher', 'pytorch',
             '--work-dir', str(tmp_path / 'work')],
            cwd=REPO, env=env, stdout=logs[rank], stderr=subprocess.STDOUT))
    try:
        deadline = time.time() + 300
        # Both ranks are past their first all-reduces once rank 0 saved epoch 1.
        while 'Saving checkpoint at 1 epochs' not in open(tmp_path / 'rank0.log').read():
            assert procs[0].poll() is None and procs[1].poll() is None, \
                open(tmp_path / 'rank0.log').read()[-3000:]
            assert time.time() < deadline, 'training did not start'
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGKILL if how == 'killed' else signal.SIGSTOP)
        stopped_at = time.time()
        returncode = procs[0].wait(timeout=timeout + 60)
        waited = time.time() - stopped_at
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        for log in logs:
            log.close()
    out = open(tmp_path / 'rank0.log').read()
    assert returncode != 0, out[-3000:]
    assert waited < timeout + 30, f'rank 0 took {waited:.0f} s to stop'
    # gloo's own words: the peer's socket was closed, or the collective timed out.
    expected = 'Connection reset by peer' if how == 'killed' else 'Timed out'
    assert expected in out or 'Connection closed by peer' in out, out[-3000:]
    if how == 'hung':
        assert waited > timeout / 2, f'rank 0 stopped after {waited:.0f} s, before the timeout'
