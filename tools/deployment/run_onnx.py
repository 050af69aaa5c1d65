"""Run an exported ONNX detector: ``run_onnx.py model.onnx IMAGE [--out dets.json]``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.deployment`.
"""
from rcnn_plugins.cli.deployment import run_onnx_main

if __name__ == '__main__':
    run_onnx_main()
