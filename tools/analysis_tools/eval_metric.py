"""Evaluate saved predictions: ``eval_metric.py CONFIG results.pkl``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.analysis_tools`.
"""
from rcnn_plugins.cli.analysis_tools import eval_metric_main

if __name__ == '__main__':
    eval_metric_main()
