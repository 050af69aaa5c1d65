"""Export a detector to ONNX / torch.export: ``export.py CONFIG CHECKPOINT --format onnx --out model.onnx``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.deployment`.
"""
from rcnn_plugins.cli.deployment import export_main

if __name__ == '__main__':
    export_main()
