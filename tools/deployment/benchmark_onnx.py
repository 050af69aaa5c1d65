"""ONNX Runtime vs eager latency: ``benchmark_onnx.py CONFIG [CHECKPOINT]``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.deployment`.
"""
from rcnn_plugins.cli.deployment import benchmark_onnx_main

if __name__ == '__main__':
    benchmark_onnx_main()
