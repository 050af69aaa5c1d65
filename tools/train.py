"""Train a detector: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
[--auto-scale-lr] [--unsafe-load] [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]``.

A thin wrapper over :func:`rcnn_plugins.cli.train_main` (also installed as ``rcnn-train``).
"""
from rcnn_plugins.cli import train_main

if __name__ == '__main__':
    train_main()
