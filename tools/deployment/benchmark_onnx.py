"""ONNX Runtime vs eager PyTorch CPU latency of one image (median of --runs, after --warmup).

``python tools/deployment/benchmark_onnx.py CONFIG [CHECKPOINT] [--shape 800 1216] [--runs 3] [--threads 2]``

Without CHECKPOINT the weights are random (latency does not depend on them, except through the
number of boxes reaching the final NMS, reported as ``detections``). Logic:
:func:`rcnn_plugins.deployment.latency.measure_latency`.
"""
import argparse
import json

from mmengine.config import DictAction


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', default=None)
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1216], metavar=('H', 'W'))
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None)
    args = parser.parse_args(argv)
    from rcnn_plugins.apis import init_detector
    from rcnn_plugins.deployment.latency import measure_latency
    options = dict(args.cfg_options or {})
    if args.checkpoint is None:
        options.setdefault('model.backbone.init_cfg', None)  # random weights: no ImageNet download
    model = init_detector(args.config, args.checkpoint, cfg_options=options)
    result = measure_latency(model, args.shape, args.runs, args.warmup, args.threads)
    print(json.dumps(result))
    print(f"{args.shape[0]}x{args.shape[1]}, {args.threads} threads: "
          f"onnxruntime {result['onnxruntime_s'] * 1000:.0f} ms, "
          f"eager PyTorch {result['eager_s'] * 1000:.0f} ms (median of {args.runs})")


if __name__ == '__main__':
    main()
