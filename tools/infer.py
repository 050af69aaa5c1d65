"""Detect objects: ``python tools/infer.py INPUTS... CONFIG [CHECKPOINT] --out-dir OUT [--score-thr 0.3]``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.infer`.
"""
from rcnn_plugins.cli.infer import infer_main

if __name__ == '__main__':
    infer_main()
