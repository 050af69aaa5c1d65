"""Test a detector: ``python tools/test.py CONFIG CHECKPOINT [--out results.pkl] [--show-dir D] [--cfg-options k=v ...]``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.test`.
"""
from rcnn_plugins.cli.test import test_main

if __name__ == '__main__':
    test_main()
