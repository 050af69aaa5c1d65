"""rcnn_plugins' CheckpointHook: a failed save never costs the previous checkpoint, old
checkpoints are pruned only after the new one is safely on disk, best checkpoints likewise.

A toy model and dataset keep this independent of the detector (a few seconds on CPU).
"""
import os
import os.path as osp

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.fileio import LocalBackend
from mmengine.dataset import pseudo_collate
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from torch.utils.data import DataLoader, Dataset

from rcnn_plugins.engine.hooks.checkpoint_hook import CheckpointHook
from rcnn_plugins.registry import HOOKS


class ToyModel(BaseModel):
    def __init__(self):
        # Instances rather than configs: this test must not depend on rcnn_plugins' own models.
        super().__init__(data_preprocessor=BaseDataPreprocessor())
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=(out - torch.stack(data_samples)).pow(2).mean())
        return [dict(pred=o) for o in out]


class ToyDataset(Dataset):
    metainfo = dict(classes=('toy', ))

    def __len__(self):
        return 4

    def __getitem__(self, idx):
        return dict(inputs=torch.tensor([float(idx), 1.0]), data_samples=torch.tensor([float(idx)]))


class ScriptedMetric(BaseMetric):
    """Returns the next value of ``scores`` at each evaluation."""

    default_prefix = 'toy'

    def __init__(self, scores):
        super().__init__()
        self.scores = list(scores)

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        return dict(score=self.scores.pop(0))


def toy_loader():
    return DataLoader(ToyDataset(), batch_size=2, collate_fn=pseudo_collate)


def make_runner(work_dir, max_epochs, checkpoint, scores=None):
    val = {}
    if scores is not None:
        val = dict(val_dataloader=toy_loader(), val_evaluator=[ScriptedMetric(scores)], val_cfg=dict())
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=toy_loader(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, **checkpoint)),
        default_scope='rcnn_plugins',
        experiment_name=f'ckpt_{osp.basename(str(work_dir))}_{max_epochs}',
        **val)


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
    # Loadable the way the Runner loads (mmengine's loader, as patched for torch >= 2.6).
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
    ckpt = torch.load(osp.join(tmp_path, 'epoch_3.pth'), map_location='cpu', weights_only=False)
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
    ckpt = torch.load(osp.join(tmp_path, 'epoch_3.pth'), map_location='cpu', weights_only=False)
    assert ckpt['message_hub']['runtime_info']['best_score'] == 0.3
    assert ckpt['message_hub']['runtime_info']['best_ckpt'].endswith('best_toy_score_epoch_3.pth')
