"""The deployment commands behind ``tools/deployment/*.py``; the work is :mod:`rcnn_plugins.deployment`'s.

    export.py CONFIG CHECKPOINT --format onnx|torch_export [--shape 800 1216] [--dynamic] --out model.onnx
    run_onnx.py model.onnx IMAGE [--config CONFIG] [--score-thr 0.3] [--out dets.json] [--show out.jpg]
    benchmark_onnx.py CONFIG [CHECKPOINT] [--shape 800 1216] [--runs 3] [--threads 2]

The exported graph takes one normalised, padded image tensor (1, 3, H, W) and returns ``boxes``
(K, 4) in pixels of that tensor, ``scores`` (K,), ``labels`` (K,); ``run_onnx.py`` (or
``rcnn_plugins.deployment.export.ONNXDetector``) does the preprocessing and maps boxes back to the
image, from the file's metadata or ``--config``.
"""
import argparse
import json
import sys

from rcnn_plugins.fileio import atomic_write
from .common import add_config_flags, load_config, unsafe_load
from .errors import command


# ---- export --------------------------------------------------------------------------------------
def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Export a detector\'s whole predict path (backbone to the '
                                     'final class-wise NMS) for deployment')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--format', choices=['onnx', 'torch_export'], default='onnx')
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1216], metavar=('H', 'W'),
                        help='input tensor size, multiples of 32 (default 800 1216); with --dynamic the traced size')
    parser.add_argument('--dynamic', action='store_true', help='dynamic height and width (multiples of 32)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--out', required=True, help='output file (.onnx / .pt2)')
    add_config_flags(parser)
    return parser


@command
def export_main(argv=None) -> str:
    from rcnn_plugins.apis import init_detector
    from rcnn_plugins.deployment.export import export_onnx, export_torch
    args = export_parser().parse_args(argv)
    cfg = load_config(args.config, args)
    with unsafe_load(args):
        model = init_detector(cfg, args.checkpoint)
    if args.format == 'onnx':
        export_onnx(model, args.out, args.shape, dynamic=args.dynamic, opset=args.opset)
    else:
        export_torch(model, args.out, args.shape, dynamic=args.dynamic)
    size = 'H, W' if args.dynamic else ', '.join(map(str, args.shape))
    print(f'wrote {args.out} ({args.format}, input (1, 3, {size}))')
    return args.out


# ---- run_onnx ------------------------------------------------------------------------------------
def run_onnx_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Run an exported ONNX detector with onnxruntime on an image '
                                     'and print / write its detections (boxes in pixels of IMAGE)')
    parser.add_argument('model', help='.onnx file')
    parser.add_argument('image')
    parser.add_argument('--config', default=None, help='config the model was exported from (default: the metadata)')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--threads', type=int, default=None, help='onnxruntime intra-op threads')
    parser.add_argument('--out', default=None, help='write the detections here (JSON)')
    parser.add_argument('--show', default=None, help='write the image with the boxes drawn here')
    return parser


@command
def run_onnx_main(argv=None) -> list:
    from rcnn_plugins.deployment.export import ONNXDetector, draw_detections
    args = run_onnx_parser().parse_args(argv)
    detector = ONNXDetector(args.model, args.config, threads=args.threads)
    result = detector(args.image, score_thr=args.score_thr)
    records = [dict(label=int(label), score=round(float(score), 5), bbox=[round(float(v), 2) for v in box])
               for box, score, label in zip(result['bboxes'], result['scores'], result['labels'])]
    for rec, name in zip(records, result.get('classes') or [None] * len(records)):
        if name is not None:
            rec['class'] = name
        print(json.dumps(rec))
    print(f'{len(records)} detections with score > {args.score_thr}', file=sys.stderr)
    if args.out:
        with atomic_write(args.out, 'w') as f:
            json.dump(records, f, indent=1)
    if args.show:
        draw_detections(args.image, result, args.show, detector.classes)
        print(f'wrote {args.show}', file=sys.stderr)
    return records


# ---- benchmark_onnx ------------------------------------------------------------------------------
def benchmark_onnx_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='ONNX Runtime vs eager PyTorch CPU latency of one image (median '
                                     'of --runs, after --warmup); without CHECKPOINT random weights')
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', default=None)
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1216], metavar=('H', 'W'))
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2)
    add_config_flags(parser)
    return parser


@command
def benchmark_onnx_main(argv=None) -> dict:
    from rcnn_plugins.apis import init_detector
    from rcnn_plugins.deployment.latency import measure_latency
    args = benchmark_onnx_parser().parse_args(argv)
    cfg = load_config(args.config, args)
    if args.checkpoint is None and cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None  # random weights: no ImageNet checkpoint needed
    with unsafe_load(args):
        model = init_detector(cfg, args.checkpoint)
    result = measure_latency(model, args.shape, args.runs, args.warmup, args.threads)
    print(json.dumps(result))
    print(f"{args.shape[0]}x{args.shape[1]}, {args.threads} threads: "
          f"onnxruntime {result['onnxruntime_s'] * 1000:.0f} ms, "
          f"eager PyTorch {result['eager_s'] * 1000:.0f} ms (median of {args.runs})")
    return result
