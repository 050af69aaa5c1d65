"""Test a detector: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
[--show-dir DIR] [--show] [--unsafe-load] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]``.

A thin wrapper over :func:`rcnn_plugins.cli.test_main` (also installed as ``rcnn-test``).
"""
from rcnn_plugins.cli import test_main

if __name__ == '__main__':
    test_main()
