"""``rcnn-train`` / ``tools/train.py``: train a detector (MMDetection 3.x's flags).

``train_parser`` (argparse), ``train_config`` (config file + flags -> the ``Config`` it trains with,
no side effects, so tests can check what a command line would run), ``train_main`` (run it).
"""
import argparse

from mmengine.config import Config

from . import common
from .errors import UsageError, command


def train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision: on a GPU fp16 with dynamic loss scaling '
                             '(AmpOptimWrapper), on a CPU with native bf16 (AVX-512 BF16 / AMX) bf16 '
                             'autocast (BF16OptimWrapper); validation runs under autocast too')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by (total batch size / auto_scale_lr.base_batch_size)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume training: with a path, from that checkpoint; without, from the '
             'work dir\'s last_checkpoint')
    common.add_runner_flags(parser)
    return parser


def train_config(args: argparse.Namespace) -> Config:
    """The config that ``tools/train.py`` with ``args`` trains with."""
    cfg = common.load_runner_config(args)

    if args.amp:
        if common.amp_device() == 'cuda':
            if cfg.optim_wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper':
                cfg.optim_wrapper.type = 'AmpOptimWrapper'
                cfg.optim_wrapper.loss_scale = 'dynamic'
        else:
            # mmengine's AmpOptimWrapper asserts an accelerator; on CPU the bf16 wrapper does the
            # same job (no loss scaling: bf16 has float32's range).
            for key in ('loss_scale', 'dtype', 'use_fsdp'):
                cfg.optim_wrapper.pop(key, None)
            cfg.optim_wrapper.type = 'BF16OptimWrapper'
        common.loop_autocast(cfg, 'val_cfg')

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise UsageError('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        # The Runner finds work_dir/last_checkpoint itself when load_from is None.
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


@command
def train_main(argv=None) -> None:
    from rcnn_plugins.engine import build_runner, release_process_group
    args = train_parser().parse_args(argv)
    cfg = train_config(args)
    with common.unsafe_load(args):
        build_runner(cfg).train()
    if release_process_group():  # a torchrun worker: done (see exit_distributed_worker)
        common.exit_distributed_worker()
