"""The ``tools/deployment/quantize.py`` command: int8 static quantization of an exported detector,
with its mAP before and after and the speed-up; the work is :mod:`rcnn_plugins.deployment.quantize`'s.

    quantize.py CONFIG CKPT --calib-images 100 --backend onnxruntime|openvino
        [--max-drop 1.0] [--force] [--out FILE] [--work-dir DIR] [--cfg-options ...] [--unsafe-load]

Exit status 0 when the int8 model is written; 1 when its mAP drop exceeds ``--max-drop`` (nothing
written, ``--force`` writes it anyway); 2 for bad input (cli/errors.py).
"""
import argparse
import os
import os.path as osp
import shutil
import tempfile

from .common import add_config_flags, load_config, unsafe_load
from .errors import UsageError, command


def quantize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='int8 static quantization of an exported detector, with its '
                                                 'mAP before and after and the speed-up')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--calib-images', type=int, default=100, help='calibration images from the training set')
    parser.add_argument('--backend', choices=['onnxruntime', 'openvino'], default='onnxruntime',
                        help='runtime that evaluates and times the int8 model (the quantizer is onnxruntime\'s; '
                             'OpenVINO runs its QDQ file as int8)')
    parser.add_argument('--max-drop', type=float, default=1.0, help='refuse an mAP drop above this (points)')
    parser.add_argument('--force', action='store_true', help='write the int8 model whatever its mAP')
    parser.add_argument('--out', default=None, help='int8 .onnx path (default: next to the fp32 export)')
    parser.add_argument('--work-dir', default=None)
    add_config_flags(parser)
    return parser


@command
def quantize_main(argv=None) -> int:
    """Quantize, evaluate fp32 and int8 on the config's test set, time both, write the int8 file."""
    import torch

    from rcnn_plugins.apis import init_detector
    from rcnn_plugins.deployment.backends import BackendPredictor, MissingExtraError, require_backend
    from rcnn_plugins.deployment.quantize import calibration_inputs, evaluate, median_latency, quantize_onnx
    args = quantize_parser().parse_args(argv)
    try:
        require_backend(args.backend)
        require_backend('onnxruntime')  # the quantizer
    except MissingExtraError as err:
        raise UsageError(str(err)) from None
    cfg = load_config(args.config, args)
    with unsafe_load(args):
        model = init_detector(cfg, args.checkpoint, exact=True)
    fp32 = BackendPredictor(model, 'onnxruntime', args.checkpoint).path
    inputs = calibration_inputs(model, cfg, args.calib_images)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='rcnn_quantize_')
    os.makedirs(work_dir, exist_ok=True)
    tmp = osp.join(work_dir, 'int8.onnx')
    quantize_onnx(fp32, tmp, inputs)
    with unsafe_load(args):
        before = evaluate(cfg, args.checkpoint, args.backend, fp32, osp.join(work_dir, 'fp32'))
        after = evaluate(cfg, args.checkpoint, args.backend, tmp, osp.join(work_dir, 'int8'))
    t32, t8 = median_latency([fp32, tmp], args.backend, inputs[:10])
    key = next((k for k in before if k.endswith('bbox_mAP')), next(iter(before)))
    drop = 100 * (before[key] - after[key])
    print(f'{"":<24}{"fp32":>10}{"int8":>10}')
    for k in before:
        if isinstance(before[k], float):
            print(f'{k:<24}{before[k]:>10.3f}{after[k]:>10.3f}')
    print(f'{"latency (ms/image)":<24}{1000 * t32:>10.1f}{1000 * t8:>10.1f}   speed-up x{t32 / t8:.2f} '
          f'({args.backend}, {torch.get_num_threads()} threads)')
    print(f'{key} drop: {drop:.2f} points (limit {args.max_drop})')
    if drop > args.max_drop and not args.force:
        print(f'refused: the int8 model loses {drop:.2f} points of {key} (> --max-drop {args.max_drop}); '
              'nothing written (--force writes it anyway)')
        return 1
    out = args.out or fp32[:-len('.onnx')] + '.int8.onnx'
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    shutil.move(tmp, out)
    print(f'int8 model: {out}  (run it: DetInferencer(CONFIG, CKPT, backend={args.backend!r}, onnx_path=FILE))')
    return 0
