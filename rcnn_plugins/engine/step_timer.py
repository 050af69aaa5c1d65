"""How long one training step of a config takes on this machine, measured on the config's own data.

Used to size a schedule to a wall-time budget (``tools/demo.py``: a fixed number of epochs would be
tuned to one kind of CPU) and by ``tools/benchmark_configs.py`` to compare configs on the same
batches.
"""
import copy
import statistics
import time
from typing import List, Tuple

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from torch import nn


def take_batches(cfg: Config, split: str, count: int) -> List[dict]:
    """The first ``count`` batches of ``cfg.{split}_dataloader`` (loaded in this process)."""
    loader_cfg = copy.deepcopy(cfg[f'{split}_dataloader'])
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    batches = []
    for batch in Runner.build_dataloader(loader_cfg, seed=0):
        batches.append(batch)
        if len(batches) == count:
            break
    return batches


def build_for_training(cfg: Config, amp: bool) -> Tuple[nn.Module, OptimWrapper]:
    """The config's model (seed 0, no pretrained weights) and optimiser wrapper; ``amp``: the CPU bf16
    wrapper, as ``tools/train.py --amp`` gives on a CPU."""
    init_default_scope(cfg.get('default_scope', 'rcnn_plugins'))
    from ..registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('backbone') is not None:
        model_cfg.backbone.init_cfg = None  # timing needs no pretrained weights
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
    if amp:
        for key in ('loss_scale', 'dtype', 'use_fsdp'):
            wrapper_cfg.pop(key, None)
        wrapper_cfg.type = 'BF16OptimWrapper'
    return model, build_optim_wrapper(model, wrapper_cfg)


def time_train_steps(model: nn.Module, optim_wrapper: OptimWrapper, batches: List[dict], warmup: int) -> List[float]:
    """Seconds of each ``model.train_step`` (forward, backward, update) over ``batches`` after the
    first ``warmup`` (first steps allocate and pick kernels)."""
    model.train()
    times = []
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def median_train_step(cfg: Config, amp: bool, steps: int = 20, warmup: int = 5) -> float:
    """Median seconds of a training step of ``cfg`` (its model, optimiser, data and batch size) here,
    at the current torch thread count. The model is a throw-away copy; nothing is written."""
    model, optim_wrapper = build_for_training(cfg, amp)
    batches = take_batches(cfg, 'train', steps + warmup)
    if len(batches) <= warmup:
        raise ValueError(f'median_train_step: the train set gives {len(batches)} batches, need more than {warmup}')
    return statistics.median(time_train_steps(model, optim_wrapper, batches, warmup))
