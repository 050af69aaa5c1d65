"""Train a detector: ``python tools/train.py CONFIG [--work-dir W] [--resume] [--amp] [--cfg-options k=v ...]``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.train`.
"""
from rcnn_plugins.cli.train import train_main

if __name__ == '__main__':
    train_main()
