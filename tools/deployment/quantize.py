"""int8 static quantization of a detector with its mAP before/after and speed-up:

    python tools/deployment/quantize.py CONFIG CKPT --calib-images 100 --backend onnxruntime|openvino
        [--max-drop 1.0] [--force] [--out FILE] [--cfg-options ...]

A thin wrapper over :func:`rcnn_plugins.cli.quantize.quantize_main`.
"""
import sys

from rcnn_plugins.cli.quantize import quantize_main

if __name__ == '__main__':
    sys.exit(quantize_main())
