"""A toy model, dataset, metric and Runner for the engine tests (checkpoint hook, divergence guard,
safe loading): they exercise the training loop without depending on rcnn_plugins' own detectors, and
run in a few seconds on CPU. Also imported by scripts the tests start in a subprocess (with the tests
folder on ``sys.path``).
"""
import os.path as osp

import torch
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Dataset

from rcnn_plugins.engine import setup_runtime


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
    setup_runtime()  # what every entry point does: safe checkpoint loading for resume
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
