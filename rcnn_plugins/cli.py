"""Command-line training and testing: the logic behind ``tools/train.py`` / ``tools/test.py`` and the
``rcnn-train`` / ``rcnn-test`` console scripts.

Flags follow MMDetection 3.x's tools. Each tool is split into ``*_parser`` (argparse),
``*_config`` (config file + flags -> mmengine ``Config``, no side effects, so tests can check what
a command line would run) and ``*_main`` (build the ``Runner`` and run it).
"""
import argparse
import contextlib
import datetime
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction


def _add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. model.roi_head.bbox_roi_extractor.roi_layer.type=RoIPool '
             'train_cfg.max_epochs=2; lists as key="[a,b]" or key=a,b')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='how the processes were started (pytorch = torchrun)')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load checkpoints that the safe loader refuses (weights_only=False): '
                             'they can run any code; only for files you trust')
    # torch.distributed.launch passes --local_rank (older) or --local-rank (newer).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def _apply_common_args(cfg: Config, args: argparse.Namespace) -> None:
    if args.cfg_options is not None:
        from rcnn_plugins.config_overrides import typo_in_override
        for key in args.cfg_options:
            message = typo_in_override(cfg, key)
            if message is not None:
                raise SystemExit(f'error: {message}')
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    # Priority: --work-dir, then the config's work_dir, then ./work_dirs/<config name>.
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


def _runner_class(cfg: Config):
    """mmengine's Runner, with what it needs around it set up."""
    # rcnn_plugins.engine routes mmengine's checkpoint loading through the safe loader (see
    # engine/checkpoint_loader.py); the Runner would import it anyway when building our hooks.
    import rcnn_plugins.engine  # noqa: F401
    import torch
    import torch.distributed as dist
    from mmengine.runner import Runner
    if cfg.launcher == 'pytorch' and not torch.cuda.is_available() and not dist.is_initialized():
        # mmengine's init_dist calls torch.cuda.set_device unconditionally; with the process
        # group already up (torchrun's env:// variables), the Runner skips it.
        # The timeout as mmengine's init_dist passes it (env_cfg.dist_cfg.timeout, seconds).
        dist_cfg = cfg.env_cfg.dist_cfg
        timeout = dist_cfg.get('timeout')
        dist.init_process_group(
            backend=dist_cfg.backend,
            timeout=None if timeout is None else datetime.timedelta(seconds=timeout))
    return Runner


def _amp_device() -> str:
    """'cuda' when a GPU is there, 'cpu' when this CPU has native bf16; otherwise a clear exit."""
    import torch
    if torch.cuda.is_available():
        return 'cuda'
    from rcnn_plugins.engine.optimizers import cpu_bf16_supported
    if not cpu_bf16_supported():
        raise SystemExit('--amp: no CUDA GPU, and this CPU has no native bf16 (AVX-512 BF16 or AMX; '
                         'torch.ops.mkldnn._is_mkldnn_bf16_supported() is False). Emulated bf16 '
                         'convolutions run ~400x slower than float32: run without --amp.')
    return 'cpu'


def _loop_autocast(cfg: Config, loop_key: str) -> None:
    """mmengine's ValLoop/TestLoop ``fp16=True``: autocast around the model, fp16 on a GPU and
    bf16 on a CPU (mmengine's ``autocast`` picks the dtype from the device)."""
    loop = cfg.get(loop_key)
    if loop is None:
        return
    if loop.get('type', 'ValLoop' if loop_key == 'val_cfg' else 'TestLoop') not in ('ValLoop', 'TestLoop'):
        raise SystemExit(f'--amp: {loop_key}.type={loop.type!r} is not mmengine\'s ValLoop/TestLoop, which '
                         'take fp16=True for autocast; run without --amp or add autocast to that loop')
    loop.fp16 = True


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
    _add_common_args(parser)
    return parser


def train_config(args: argparse.Namespace) -> Config:
    """The config that ``tools/train.py`` with ``args`` trains with."""
    cfg = Config.fromfile(args.config)
    _apply_common_args(cfg, args)

    if args.amp:
        if _amp_device() == 'cuda':
            if cfg.optim_wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper':
                cfg.optim_wrapper.type = 'AmpOptimWrapper'
                cfg.optim_wrapper.loss_scale = 'dynamic'
        else:
            # mmengine's AmpOptimWrapper asserts an accelerator; on CPU the bf16 wrapper does the
            # same job (no loss scaling: bf16 has float32's range).
            for key in ('loss_scale', 'dtype', 'use_fsdp'):
                cfg.optim_wrapper.pop(key, None)
            cfg.optim_wrapper.type = 'BF16OptimWrapper'
        _loop_autocast(cfg, 'val_cfg')

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise SystemExit('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        # The Runner finds work_dir/last_checkpoint itself when load_from is None.
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


@contextlib.contextmanager
def _user_errors_as_exit(args: argparse.Namespace):
    """``--unsafe-load`` for the block; bad input (a refused checkpoint, bad data, an unknown
    registry type) or a diverged run ends the tool with its one message (what, where, the fix)
    and exit status 1 instead of a traceback."""
    from rcnn_plugins.datasets.errors import DatasetError
    from rcnn_plugins.engine.hooks import DivergenceError
    from rcnn_plugins.engine.safe_load import CheckpointFileError, UnsafeCheckpointError, allow_unsafe_load
    from rcnn_plugins.registry import unknown_type_hint
    if args.unsafe_load:
        print('--unsafe-load: checkpoints the safe loader refuses are loaded with '
              'weights_only=False (they can run code)', file=sys.stderr)
    try:
        with allow_unsafe_load(args.unsafe_load):
            yield
    except (UnsafeCheckpointError, CheckpointFileError, DivergenceError, DatasetError) as error:
        raise SystemExit(f'error: {error}') from None
    except KeyError as error:  # mmengine's "X is not in the ... registry", maybe nested
        hint = unknown_type_hint(str(error))
        if hint is None:
            raise
        raise SystemExit(f'error: {hint}') from None


def train_main(argv=None) -> None:
    args = train_parser().parse_args(argv)
    cfg = train_config(args)
    Runner = _runner_class(cfg)
    with _user_errors_as_exit(args):
        runner = Runner.from_cfg(cfg)
        runner.train()


def test_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    parser.add_argument('--show', action='store_true', help='show prediction images in a window')
    parser.add_argument('--show-dir', help='write prediction images into <work_dir>/<timestamp>/'
                        'SHOW_DIR (a relative path) or SHOW_DIR')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds per image with --show')
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help='fold BatchNorm into the preceding convolutions after loading (faster '
                             'inference; results change by float rounding only)')
    parser.add_argument('--channels-last', action='store_true',
                        help='run the model on channels-last (NHWC) tensors: faster convolutions on '
                             'CPUs, results change by float rounding only')
    parser.add_argument('--amp', action='store_true',
                        help='autocast: fp16 on a GPU, bf16 + channels-last on a CPU with native bf16 '
                             '(AVX-512 BF16 / AMX)')
    parser.add_argument('--backend', choices=['pytorch', 'onnxruntime', 'openvino'], default='pytorch',
                        help='evaluate through the exported model on onnxruntime or OpenVINO (fp32; exported on '
                             'first use and cached next to the checkpoint)')
    parser.add_argument('--exact', action='store_true',
                        help='run the model as built; by default BN is folded into the convolutions and '
                             'a CPU runs channels-last (equal to the plain model to float rounding)')
    _add_common_args(parser)
    return parser


def test_config(args: argparse.Namespace) -> Config:
    """The config that ``tools/test.py`` with ``args`` tests with."""
    cfg = Config.fromfile(args.config)
    _apply_common_args(cfg, args)
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        hooks = cfg.default_hooks
        if 'visualization' not in hooks:
            raise SystemExit('--show/--show-dir need default_hooks.visualization in the config')
        hooks.visualization.draw = True
        if args.show:
            hooks.visualization.show = True
            hooks.visualization.wait_time = args.wait_time
        if args.show_dir:
            hooks.visualization.test_out_dir = args.show_dir

    _apply_test_inference_path(cfg, args)

    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit('--out must be a .pkl or .pickle file')
        evaluators = cfg.test_evaluator
        if not isinstance(evaluators, list):
            evaluators = [evaluators]
        cfg.test_evaluator = list(evaluators) + [dict(type='DumpResults', out_file_path=args.out)]
    return cfg


def _apply_test_inference_path(cfg: Config, args: argparse.Namespace) -> None:
    """The fast path by default (BN folded + channels-last on a CPU), --exact off, --amp autocast;
    see rcnn_plugins.apis.inference_path."""
    if args.amp:
        _amp_device()
        _loop_autocast(cfg, 'test_cfg')
    if getattr(args, 'backend', 'pytorch') != 'pytorch':
        from rcnn_plugins.deployment.backends import require_backend
        try:
            require_backend(args.backend)
        except ImportError as err:
            raise SystemExit(f'error: {err}') from None
        if args.amp:
            raise SystemExit('--amp applies to --backend pytorch only (the exported backends run fp32)')
        return  # the exported graph is optimised by its runtime; BackendTestHook is added in test_main
    if args.fuse_conv_bn or args.channels_last:  # explicit switches, as before
        fuse, channels_last = args.fuse_conv_bn, args.channels_last
        reason = f'as asked: --fuse-conv-bn={fuse}, --channels-last={channels_last}'
    else:
        import torch

        from rcnn_plugins.apis.inference_path import choose_inference_path
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
        # --amp was checked above (a CPU without native bf16 has exited).
        path = choose_inference_path(device, exact=args.exact, amp=args.amp)
        fuse, channels_last, reason = path['fuse_conv_bn'], path['channels_last'], path['reason']
    if fuse or channels_last:
        # A hook, not a model change here: the Runner loads the checkpoint inside test(), and
        # the hook's before_test runs after that.
        cfg.custom_hooks = list(cfg.get('custom_hooks', None) or []) + [
            dict(type='FastInferenceHook', fuse_conv_bn=fuse, channels_last=channels_last, reason=reason)]


def test_main(argv=None) -> dict:
    args = test_parser().parse_args(argv)
    cfg = test_config(args)
    Runner = _runner_class(cfg)
    with _user_errors_as_exit(args):
        runner = Runner.from_cfg(cfg)
        if args.backend != 'pytorch':
            from rcnn_plugins.deployment.backends import BackendTestHook
            runner.register_hook(BackendTestHook(args.backend, args.checkpoint))
        return runner.test()

