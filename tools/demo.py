"""The demo driver behind ``make demo``: data, training, evaluation, drawn predictions, one table.

    python tools/demo.py [--config configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py]
                         [--work-dir work_dirs/demo] [--data data/demo] [--threads 1]
                         [--precision auto|bf16|fp32]

1. generates the shapes dataset into ``--data`` unless it is already there;
2. sizes the schedule: as many epochs as fit in ``--budget`` seconds of training on this machine
   (a training step is timed on the demo's own batches first), within the precision's bounds;
3. trains the config with the same code path as ``tools/train.py``;
4. tests the last checkpoint as ``tools/test.py CONFIG CKPT --show-dir vis`` does (COCO bbox mAP,
   images with the predicted boxes drawn under ``WORK_DIR/<timestamp>/vis``);
5. writes ``WORK_DIR/metrics.json`` (metrics and wall times) and prints the final table.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import make_demo_data  # noqa: E402  (tools/ is not a package)

from rcnn_plugins.cli import test_main, train_main  # noqa: E402
from rcnn_plugins.engine.optimizers import cpu_bf16_supported  # noqa: E402
from rcnn_plugins.engine.step_timer import median_train_step  # noqa: E402

# Epochs per precision, (fewest, most): the schedule is as many epochs as fit in the training
# budget on this machine, within these bounds (measured, seed 0, 2 threads): fp32 on a 2-core AVX2
# CPU fits 10 epochs in ~265 s (mAP@0.5 0.926; 9 epochs 0.888), a faster CPU buys more: from
# scratch, more steps is what this model needs (fp32 10 epochs on an AVX-512 CPU, whose float
# rounding sends training elsewhere, gave 0.850; bf16 16 epochs 0.935). bf16 steps are ~2x faster
# on CPUs with native bf16, so bf16 always trains 16. `--epochs N` fixes the schedule (a run on
# another machine then trains the same steps).
EPOCHS = dict(fp32=(10, 16), bf16=(16, 16))
# Seconds of training the schedule is sized to: with data generation, the timing of the first
# steps, the test and start-up, the demo stays under 5 minutes.
TRAIN_BUDGET_S = 240
# Logging, checkpointing and data loading on top of the timed steps.
EPOCH_OVERHEAD = 1.05


def epochs_for_budget(step_s: float, steps_per_epoch: int, budget_s: float, bounds) -> int:
    """Whole epochs of ``steps_per_epoch`` steps of ``step_s`` seconds that fit ``budget_s``, clamped
    to ``bounds`` = (fewest, most)."""
    fit = int(budget_s // (step_s * steps_per_epoch * EPOCH_OVERHEAD))
    return max(bounds[0], min(bounds[1], fit))


def sized_epochs(config: str, data_opts: list, bf16: bool, budget_s: float) -> int:
    """The demo's epochs on this machine: a training step of ``config`` timed on the demo's batches
    (10 steps after 3 warm-up; a few seconds), then :func:`epochs_for_budget`."""
    bounds = EPOCHS['bf16' if bf16 else 'fp32']
    if bounds[0] == bounds[1]:
        return bounds[0]
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(opt.split('=', 1) for opt in data_opts))
    step_s = median_train_step(cfg, amp=bf16, steps=10, warmup=3)
    init_default_scope(cfg.get('default_scope', 'rcnn_plugins'))
    steps_per_epoch = len(Runner.build_dataloader(cfg.train_dataloader, seed=0))
    epochs = epochs_for_budget(step_s, steps_per_epoch, budget_s, bounds)
    print(f'demo: a training step takes {step_s:.3f} s here, {steps_per_epoch} steps an epoch: {epochs} epochs '
          f'for the {budget_s:.0f} s training budget (bounds {bounds[0]}-{bounds[1]}; --epochs N fixes it)')
    return epochs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description='Train and evaluate the demo detector')
    parser.add_argument('--config', default='configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data', default='data/demo', help='where the demo dataset lives')
    parser.add_argument('--threads', type=int, default=min(2, os.cpu_count() or 1),
                        help='torch intra-op threads (default: 2 where there are 2+ cores; see below)')
    parser.add_argument('--precision', choices=['auto', 'bf16', 'fp32'], default='auto',
                        help='auto: bf16 autocast where the CPU has native bf16 (AVX-512 BF16 / AMX), '
                             'else fp32')
    parser.add_argument('--epochs', type=int, default=None,
                        help='training epochs (default: as many as fit --budget here, within the bounds of '
                             'the precision, see EPOCHS)')
    parser.add_argument('--budget', type=float, default=TRAIN_BUDGET_S,
                        help='seconds of training the default schedule is sized to (default: %(default)s)')
    args = parser.parse_args(argv)
    # Measured on the demo's fp32 step (2-core AVX2 machine, idle): 1 thread 0.20 s, 2 threads 0.17 s.
    # 2 threads slow down a lot whenever anything else wants a core (OpenMP threads wait on each
    # other at every op): on a busy machine pass --threads 1. Two 1-thread DDP processes (batch 1
    # each) were slower still (0.18 s a step: gloo's all-reduce competes for the same cores) and
    # their batch-of-1 BatchNorm cost mAP (0.88).
    torch.set_num_threads(args.threads)
    # Denormal floats (tiny activations/gradients of a from-scratch model) take a slow path on x86.
    torch.set_flush_denormal(True)
    bf16 = args.precision == 'bf16' or (args.precision == 'auto' and cpu_bf16_supported())
    amp = ['--amp'] if bf16 else []
    print(f'demo: {"bf16 autocast" if bf16 else "fp32"}, {args.threads} torch thread(s)'
          + ('' if bf16 or cpu_bf16_supported() else ' (this CPU has no native bf16)'))

    start = time.time()
    if not all(osp.isfile(osp.join(args.data, 'annotations', f'{split}.json'))
               for split in ('train', 'val')):
        make_demo_data.main(['--out', args.data])
    data_opts = [f'train_dataloader.dataset.data_root={args.data}/',
                 f'val_dataloader.dataset.data_root={args.data}/',
                 f'test_dataloader.dataset.data_root={args.data}/',
                 f'val_evaluator.ann_file={args.data}/annotations/val.json',
                 f'test_evaluator.ann_file={args.data}/annotations/val.json']

    epochs = args.epochs or sized_epochs(args.config, data_opts, bf16, args.budget)
    # The test below evaluates the final checkpoint: no validation during training.
    schedule = [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs + 1}',
                f'param_scheduler.1.end={epochs}', f'param_scheduler.1.T_max={epochs}',
                f'default_hooks.checkpoint.interval={epochs}']
    print(f'demo: {epochs} epochs')
    train_start = time.time()
    train_main([args.config, '--work-dir', args.work_dir, *amp, '--cfg-options', *data_opts, *schedule])
    train_time = time.time() - train_start

    with open(osp.join(args.work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    test_start = time.time()
    before = set(glob.glob(osp.join(args.work_dir, '*', 'vis')))
    # The default inference path (BN folded, channels-last); bf16 too where training used it.
    metrics = test_main([args.config, checkpoint, '--work-dir', args.work_dir, '--show-dir', 'vis', *amp,
                         '--cfg-options', *data_opts])
    vis_dirs = sorted(set(glob.glob(osp.join(args.work_dir, '*', 'vis'))) - before, key=osp.getmtime)
    test_time = time.time() - test_start
    total_time = time.time() - start

    summary = dict(metrics=metrics, precision='bf16' if bf16 else 'fp32', threads=args.threads, epochs=epochs,
                   checkpoint=checkpoint, train_time_s=round(train_time, 1),
                   test_time_s=round(test_time, 1), total_time_s=round(total_time, 1))
    with open(osp.join(args.work_dir, 'metrics.json'), 'w') as f:
        json.dump(summary, f, indent=2)

    print('\n' + '=' * 48)
    print(f'{"demo result":<32}{"value":>16}')
    print('-' * 48)
    for key, value in metrics.items():
        print(f'{key:<32}{value:>16.3f}' if isinstance(value, float) else f'{key:<32}{value!s:>16}')
    print(f'{"train time (s)":<32}{train_time:>16.1f}')
    print(f'{"test time (s)":<32}{test_time:>16.1f}')
    print(f'{"total wall time (s)":<32}{total_time:>16.1f}')
    print('=' * 48)
    print(f'checkpoint: {checkpoint}')
    print(f'metrics:    {osp.join(args.work_dir, "metrics.json")}')
    print(f'drawn predictions: {vis_dirs[-1] if vis_dirs else "(none written)"}')


if __name__ == '__main__':
    main()
