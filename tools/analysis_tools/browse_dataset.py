"""Draw a dataset after its training pipeline: ``browse_dataset.py CONFIG --output-dir D``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.analysis_tools`.
"""
from rcnn_plugins.cli.analysis_tools import browse_dataset_main

if __name__ == '__main__':
    browse_dataset_main()
