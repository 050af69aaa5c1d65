"""rcnn_plugins' CheckpointHook: a failed save never costs the previous checkpoint, old
checkpoints are pruned only after the new one is safely on disk, best checkpoints likewise; a
write that fails part-way, an fsync that fails, and a process killed with SIGKILL in the middle
of writing a checkpoint all leave ``last_checkpoint`` pointing at a complete, loadable file.

A toy model and dataset keep this independent of the detector (a few seconds on CPU).
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from mmengine.fileio import LocalBackend
from mmengine.runner.checkpoint import _load_checkpoint

from rcnn_plugins.engine.hooks.checkpoint_hook import CheckpointHook
from rcnn_plugins.fileio.safe_load import load_checkpoint_file
from rcnn_plugins.registry import HOOKS
from repo_paths import REPO_ROOT, TESTS_DIR
from toy_runner import make_runner


def read_last(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read()


def test_registered_under_mmengine_name():
    assert HOOKS.get('CheckpointHook') is CheckpointHook


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    make_runner(tmp_path, 1, dict(max_keep_ckpts=1)).train()
    first = osp.join(tmp_path, 'epoch_1.pth')
    assert read_last(tmp_path) == first

    # The next save dies half-way through writing the file (disk full, killed, ...).
    real_put = LocalBackend.put

    def put_half_then_fail(self, obj, filepath):
        real_put(self, obj[:len(obj) // 2], filepath)
        raise OSError('simulated crash during checkpoint write')

    monkeypatch.setattr(LocalBackend, 'put', put_half_then_fail)
    with pytest.raises(OSError, match='simulated crash'):
        make_runner(tmp_path, 2, dict(max_keep_ckpts=1)).train()
    monkeypatch.undo()

    # mmengine's hook would have deleted epoch_1.pth (max_keep_ckpts=1) before the failed save.
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth') or '.tmp' in f) == \
        ['epoch_1.pth']
    assert read_last(tmp_path) == first
    # Loadable the way the Runner loads (mmengine's loader, routed through the safe loader).
    ckpt = _load_checkpoint(first, map_location='cpu')
    assert ckpt['meta']['epoch'] == 1 and 'linear.weight' in ckpt['state_dict']


def test_prunes_only_after_successful_save(tmp_path, monkeypatch):
    removed = []
    real_remove = CheckpointHook._remove_checkpoint

    def remove_and_record(self, path):
        # At pruning time the new checkpoint must already be complete and recorded.
        newest = read_last(osp.dirname(path))
        removed.append((osp.basename(path), osp.basename(newest), osp.isfile(newest)))
        real_remove(self, path)

    monkeypatch.setattr(CheckpointHook, '_remove_checkpoint', remove_and_record)
    make_runner(tmp_path, 3, dict(max_keep_ckpts=2)).train()
    assert removed == [('epoch_1.pth', 'epoch_3.pth', True)]
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth')) == \
        ['epoch_2.pth', 'epoch_3.pth']
    ckpt = load_checkpoint_file(osp.join(tmp_path, 'epoch_3.pth'))
    assert ckpt['message_hub']['runtime_info']['keep_ckpt_ids'] == [2, 3]
    assert 'momentum_buffer' in ckpt['optimizer']['state'][0]


def test_best_checkpoint_replaced_after_new_one_is_saved(tmp_path, monkeypatch):
    removed = []
    real_remove = CheckpointHook._remove_checkpoint

    def remove_and_record(self, path):
        removed.append((osp.basename(path), osp.isfile(self.best_ckpt_path)))
        real_remove(self, path)

    monkeypatch.setattr(CheckpointHook, '_remove_checkpoint', remove_and_record)
    # The score improves at epochs 1 and 3, not at 2.
    make_runner(tmp_path, 3, dict(save_best='toy/score', rule='greater'),
                scores=[0.1, 0.05, 0.3]).train()
    assert removed == [('best_toy_score_epoch_1.pth', True)]
    files = sorted(os.listdir(tmp_path))
    assert [f for f in files if f.startswith('best')] == ['best_toy_score_epoch_3.pth']
    assert not [f for f in files if '.tmp' in f]
    ckpt = load_checkpoint_file(osp.join(tmp_path, 'epoch_3.pth'))
    assert ckpt['message_hub']['runtime_info']['best_score'] == 0.3
    assert ckpt['message_hub']['runtime_info']['best_ckpt'].endswith('best_toy_score_epoch_3.pth')


def test_failed_fsync_keeps_previous_checkpoint(tmp_path, monkeypatch):
    """The whole file was written but the disk refuses to flush it (full disk, I/O error)."""
    make_runner(tmp_path, 1, dict(max_keep_ckpts=1)).train()
    first_bytes = open(osp.join(tmp_path, 'epoch_1.pth'), 'rb').read()

    def failing_fsync(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', failing_fsync)
    with pytest.raises(OSError, match='No space left'):
        make_runner(tmp_path, 2, dict(max_keep_ckpts=1)).train()
    monkeypatch.undo()
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith('.pth') or '.tmp' in f) == ['epoch_1.pth']
    assert read_last(tmp_path) == osp.join(tmp_path, 'epoch_1.pth')
    assert open(osp.join(tmp_path, 'epoch_1.pth'), 'rb').read() == first_bytes


# A training run whose second checkpoint (about 16 MB) is written in 256 KB chunks with a pause
# between them, so the test can SIGKILL it while the bytes are going to disk.
KILLED_SAVE_SCRIPT = textwrap.dedent("""
    import sys, time
    import torch
    from mmengine.fileio import LocalBackend
    sys.path.insert(0, {tests!r})
    import toy_runner as t

    class BigToy(t.ToyModel):
        def __init__(self):
            super().__init__()
            self.register_buffer('big', torch.arange(4_000_000, dtype=torch.float32))

    real_put = LocalBackend.put
    def slow_put(self, obj, filepath):
        if 'epoch_2' not in str(filepath):
            return real_put(self, obj, filepath)
        with open(filepath, 'wb') as f:
            for start in range(0, len(obj), 1 << 18):
                f.write(obj[start:start + (1 << 18)])
                f.flush()
                time.sleep(0.05)
    LocalBackend.put = slow_put
    runner = t.make_runner({work!r}, 2, dict(max_keep_ckpts=1))
    runner.model = BigToy()
    runner.train()
""")


def test_sigkill_during_checkpoint_write(tmp_path):
    work = str(tmp_path / 'work')
    script = tmp_path / 'killed_save.py'
    script.write_text(KILLED_SAVE_SCRIPT.format(tests=TESTS_DIR, work=work))
    repo = REPO_ROOT
    proc = subprocess.Popen([sys.executable, str(script)], cwd=repo, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=repo, OMP_NUM_THREADS='1'))
    partial = None
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            names = os.listdir(work) if osp.isdir(work) else []
            tmp = [n for n in names if n.startswith('.epoch_2.pth.tmp')]
            if tmp and os.path.getsize(osp.join(work, tmp[0])) > 2 << 20:  # some MB written, not all
                partial = osp.join(work, tmp[0])
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert partial is not None, 'the save was not caught in the middle of its write'
    assert proc.returncode == -signal.SIGKILL

    first = osp.join(work, 'epoch_1.pth')
    assert read_last(work) == first
    assert not osp.exists(osp.join(work, 'epoch_2.pth'))        # nothing partial under the real name
    assert os.path.getsize(partial) < os.path.getsize(first)    # the kill really was mid-write
    ckpt = load_checkpoint_file(first)
    assert ckpt['meta']['epoch'] == 1 and ckpt['state_dict']['big'].numel() == 4_000_000
    assert torch.equal(ckpt['state_dict']['big'], torch.arange(4_000_000, dtype=torch.float32))

    # The next run in that work dir removes the leftover temporary file, then trains on.
    make_runner(work, 1, dict(max_keep_ckpts=1)).train()
    assert not osp.exists(partial)
    assert not [n for n in os.listdir(work) if '.tmp' in n]
