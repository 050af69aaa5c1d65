"""``rcnn-test`` / ``tools/test.py``: test (and evaluate) a detector (MMDetection 3.x's flags).

``test_parser`` (argparse), ``test_config`` (config file + flags -> the ``Config`` it tests with,
no side effects), ``test_main`` (run it; returns the metrics).
"""
import argparse

from mmengine.config import Config

from .common import (
    add_runner_flags,
    amp_device,
    exit_distributed_worker,
    load_runner_config,
    loop_autocast,
    unsafe_load,
)
from .errors import UsageError, command


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
    add_inference_path_flags(parser)
    add_runner_flags(parser)
    _add_tta_arg(parser)
    return parser


# --- test-time augmentation (--tta), as MMDetection's tools/test.py -------------------------
def _add_tta_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation: the config's tta_model / tta_pipeline, else flip + "
                             'no flip merged by NMS (rcnn_plugins.apis.tta)')


def _apply_tta(cfg: Config, args: argparse.Namespace) -> None:
    if getattr(args, 'tta', False):
        from rcnn_plugins.apis.tta import tta_config
        tta_config(cfg)
# ------------------------------------------------------------------------------------------


def test_config(args: argparse.Namespace) -> Config:
    """The config that ``tools/test.py`` with ``args`` tests with."""
    cfg = load_runner_config(args)
    cfg.load_from = args.checkpoint
    _apply_tta(cfg, args)

    if args.show or args.show_dir:
        hooks = cfg.default_hooks
        if 'visualization' not in hooks:
            raise UsageError('--show/--show-dir need default_hooks.visualization in the config')
        hooks.visualization.draw = True
        if args.show:
            hooks.visualization.show = True
            hooks.visualization.wait_time = args.wait_time
        if args.show_dir:
            hooks.visualization.test_out_dir = args.show_dir

    apply_inference_path(cfg, args)

    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise UsageError('--out must be a .pkl or .pickle file')
        evaluators = cfg.test_evaluator
        if not isinstance(evaluators, list):
            evaluators = [evaluators]
        cfg.test_evaluator = list(evaluators) + [dict(type='DumpResults', out_file_path=args.out)]
    return cfg


@command
def test_main(argv=None) -> dict:
    from rcnn_plugins.engine import build_runner, release_process_group
    args = test_parser().parse_args(argv)
    cfg = test_config(args)
    with unsafe_load(args):
        runner = build_runner(cfg)
        if args.backend != 'pytorch':
            from rcnn_plugins.deployment.backends import BackendTestHook
            runner.register_hook(BackendTestHook(args.backend, args.checkpoint))
        metrics = runner.test()
    if release_process_group():  # a torchrun worker: done (see exit_distributed_worker)
        exit_distributed_worker()
    return metrics


# ---------------------------------------------------------------- inference path and backends
def add_inference_path_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--exact', action='store_true',
                        help='run the model as built; by default BN is folded into the convolutions and '
                             'a CPU runs channels-last (equal to the plain model to float rounding)')
    parser.add_argument('--backend', choices=['pytorch', 'onnxruntime', 'openvino'], default='pytorch',
                        help='evaluate through the exported model on onnxruntime or OpenVINO (fp32; exported on '
                             'first use and cached next to the checkpoint)')


def apply_inference_path(cfg: Config, args: argparse.Namespace) -> None:
    """The fast path by default (BN folded + channels-last on a CPU), --exact off, --amp autocast,
    --backend checked (its hook is registered by test_main); see rcnn_plugins.apis.inference_path."""
    if args.backend != 'pytorch':
        from rcnn_plugins.deployment.backends import MissingExtraError, require_backend
        try:
            require_backend(args.backend)
        except MissingExtraError as err:
            raise UsageError(str(err)) from None
        if args.amp:
            raise UsageError('--amp applies to --backend pytorch only (the exported backends run fp32)')
        return  # the exported graph is optimised by its runtime
    if args.amp:
        amp_device()
        loop_autocast(cfg, 'test_cfg')
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
