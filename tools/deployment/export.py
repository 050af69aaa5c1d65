"""Export a detector's whole predict path (backbone to the final class-wise NMS) for deployment.

``python tools/deployment/export.py CONFIG CHECKPOINT --format onnx [--shape 800 1216] [--dynamic] --out model.onnx``
``python tools/deployment/export.py CONFIG CHECKPOINT --format torch_export [--shape 800 1216] [--dynamic]
--out model.pt2``

The graph takes one normalised, padded image tensor (1, 3, H, W) and returns ``boxes`` (K, 4) in
pixels of that tensor, ``scores`` (K,), ``labels`` (K,). ``tools/deployment/run_onnx.py`` (or
``rcnn_plugins.deployment.export.ONNXDetector``) does the preprocessing and maps boxes back to the
image. Logic: :mod:`rcnn_plugins.deployment`.
"""
import argparse
import sys

from mmengine.config import DictAction


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--format', choices=['onnx', 'torch_export'], default='onnx')
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1216], metavar=('H', 'W'),
                        help='input tensor size, multiples of 32 (default 800 1216); with --dynamic the traced size')
    parser.add_argument('--dynamic', action='store_true', help='dynamic height and width (multiples of 32)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--out', required=True, help='output file (.onnx / .pt2)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='config overrides, e.g. model.test_cfg.rcnn.score_thr=0.3')
    args = parser.parse_args(argv)
    from rcnn_plugins.apis import init_detector
    from rcnn_plugins.deployment.export import export_onnx, export_torch
    try:
        model = init_detector(args.config, args.checkpoint, cfg_options=args.cfg_options)
        if args.format == 'onnx':
            export_onnx(model, args.out, args.shape, dynamic=args.dynamic, opset=args.opset)
        else:
            export_torch(model, args.out, args.shape, dynamic=args.dynamic)
    except (FileNotFoundError, ValueError, TypeError) as err:
        sys.exit(f'error: {err}')
    size = 'H, W' if args.dynamic else ', '.join(map(str, args.shape))
    print(f'wrote {args.out} ({args.format}, input (1, 3, {size}))')


if __name__ == '__main__':
    main()
