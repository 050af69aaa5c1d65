"""Flags and config loading shared by the commands (each command module adds its own flags).

- :func:`add_config_flags`: ``--cfg-options`` (checked for typos by :func:`load_config`) and
  ``--unsafe-load``, for every command that reads a config or a checkpoint;
- :func:`add_runner_flags`: ``--work-dir``, ``--launcher``, ``--local-rank`` for the Runner commands;
- :func:`load_config`: the config file + checked overrides (``rcnn_plugins.config_utils``);
- :func:`unsafe_load`: the ``--unsafe-load`` opt-in as a context (announced once on stderr).
"""
import argparse
import contextlib
import os
import sys
from typing import Iterator

from mmengine.config import Config, DictAction

from rcnn_plugins import config_utils


def add_config_flags(parser: argparse.ArgumentParser, checkpoint: bool = True) -> None:
    """``--cfg-options``; with ``checkpoint`` (the command reads one) ``--unsafe-load`` too."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. model.roi_head.bbox_roi_extractor.roi_layer.type=RoIPool '
             'train_cfg.max_epochs=2; lists as key="[a,b]" or key=a,b. A key that looks like a typo of '
             'an existing one is refused')
    if checkpoint:
        add_unsafe_load_flag(parser)


def add_unsafe_load_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load checkpoints that the safe loader refuses (weights_only=False): '
                             'they can run any code; only for files you trust')


def add_runner_flags(parser: argparse.ArgumentParser) -> None:
    """The Runner commands' flags: :func:`add_config_flags` plus work dir, launcher, local rank."""
    add_config_flags(parser)
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='how the processes were started (pytorch = torchrun)')
    # torch.distributed.launch passes --local_rank (older) or --local-rank (newer).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(path: str, args: argparse.Namespace) -> Config:
    """``path`` with ``args.cfg_options`` merged in, every key checked for typos first."""
    return config_utils.load_config(path, getattr(args, 'cfg_options', None))


@contextlib.contextmanager
def unsafe_load(args: argparse.Namespace) -> Iterator[None]:
    """Within the block, ``--unsafe-load`` (if given) lets refused checkpoints load (logged)."""
    from rcnn_plugins.fileio import allow_unsafe_load
    enabled = bool(getattr(args, 'unsafe_load', False))
    if enabled:
        print('--unsafe-load: checkpoints the safe loader refuses are loaded with '
              'weights_only=False (they can run code)', file=sys.stderr)
    with allow_unsafe_load(enabled):
        yield


def load_runner_config(args: argparse.Namespace) -> Config:
    """The config file of ``args.config`` with the overrides and the Runner flags applied."""
    cfg = load_config(args.config, args)
    apply_runner_flags(cfg, args)
    return cfg


def apply_runner_flags(cfg: Config, args: argparse.Namespace) -> None:
    """``--launcher``, ``--work-dir`` (then the config's ``work_dir``, then
    ``./work_dirs/<config name>``) and ``--local-rank`` into ``cfg`` / the environment."""
    import os
    import os.path as osp
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if args.launcher != 'none':
        _fit_distributed_to_cpu(cfg)


def _fit_distributed_to_cpu(cfg: Config) -> None:
    """Multi-process runs without GPUs: NCCL needs GPUs, and mmengine's default DDP wrapping
    passes ``device_ids=[LOCAL_RANK]``, which DDP rejects for CPU modules."""
    import torch
    if torch.cuda.is_available():
        return
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        print('No CUDA device: using the gloo backend instead of nccl', file=sys.stderr)
        dist_cfg['backend'] = 'gloo'
    if cfg.get('model_wrapper_cfg') is None:
        # mmengine's default wrapper, but with device_ids=None as DDP requires for CPU modules.
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


def amp_device() -> str:
    """'cuda' when a GPU is there, 'cpu' when this CPU has native bf16; otherwise a UsageError."""
    import torch
    if torch.cuda.is_available():
        return 'cuda'
    from rcnn_plugins.engine.optimizers import cpu_bf16_supported
    from .errors import UsageError
    if not cpu_bf16_supported():
        raise UsageError('--amp: no CUDA GPU, and this CPU has no native bf16 (AVX-512 BF16 or AMX; '
                         'torch.ops.mkldnn._is_mkldnn_bf16_supported() is False). Emulated bf16 '
                         'convolutions run ~400x slower than float32: run without --amp.')
    return 'cpu'


def loop_autocast(cfg: Config, loop_key: str) -> None:
    """mmengine's ValLoop/TestLoop ``fp16=True``: autocast around the model, fp16 on a GPU and
    bf16 on a CPU (mmengine's ``autocast`` picks the dtype from the device)."""
    from .errors import UsageError
    loop = cfg.get(loop_key)
    if loop is None:
        return
    if loop.get('type', 'ValLoop' if loop_key == 'val_cfg' else 'TestLoop') not in ('ValLoop', 'TestLoop'):
        raise UsageError(f'--amp: {loop_key}.type={loop.type!r} is not mmengine\'s ValLoop/TestLoop, which '
                         'take fp16=True for autocast; run without --amp or add autocast to that loop')
    loop.fp16 = True


def exit_distributed_worker() -> None:
    """End a torchrun worker whose run succeeded: flush the output and the log files, then exit 0
    without the interpreter's teardown.

    In that teardown a C++ thread of torch's distributed stack can still be joinable when it is
    destroyed; the worker then aborts (``terminate called without an active exception``, SIGABRT)
    after a run that succeeded, and torchrun fails the whole job (about 1 run in 6 of a two-process
    CPU test, with the process group already destroyed). Everything the run writes is closed by
    then: checkpoints are written atomically, the Runner's ``after_run`` closes its log backends.
    """
    import logging
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
