"""Faster R-CNN 4-step alternating training: ``python tools/train_alternating.py CONFIG [--work-dir W] [--resume]``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.train_alternating`.
"""
from rcnn_plugins.cli.train_alternating import train_alternating_main

if __name__ == '__main__':
    train_alternating_main()
