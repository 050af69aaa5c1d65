"""``rcnn-test`` / ``tools/test.py``: test (and evaluate) a detector (MMDetection 3.x's flags).

``test_parser`` (argparse), ``test_config`` (config file + flags -> the ``Config`` it tests with,
no side effects), ``test_main`` (run it; returns the metrics).
"""
import argparse

from mmengine.config import Config

from .common import add_config_flags, add_runner_flags, amp_device, apply_runner_flags, load_config, loop_autocast
from .common import unsafe_load
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
                        help='autocast: fp16 on a GPU, bf16 on a CPU with native bf16 (AVX-512 BF16 / '
                             'AMX; combine with --channels-last there)')
    add_runner_flags(parser)
    add_config_flags(parser)
    return parser


def test_config(args: argparse.Namespace) -> Config:
    """The config that ``tools/test.py`` with ``args`` tests with."""
    cfg = load_config(args.config, args)
    apply_runner_flags(cfg, args)
    cfg.load_from = args.checkpoint

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

    if args.fuse_conv_bn or args.channels_last:
        # A hook, not a model change here: the Runner loads the checkpoint inside test(), and
        # the hook's before_test runs after that.
        cfg.custom_hooks = list(cfg.get('custom_hooks', None) or []) + [
            dict(type='FastInferenceHook', fuse_conv_bn=args.fuse_conv_bn, channels_last=args.channels_last)]
    if args.amp:
        amp_device()
        loop_autocast(cfg, 'test_cfg')

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
    from rcnn_plugins.engine import build_runner
    args = test_parser().parse_args(argv)
    cfg = test_config(args)
    with unsafe_load(args):
        return build_runner(cfg).test()
