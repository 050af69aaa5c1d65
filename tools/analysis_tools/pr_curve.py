"""Precision-recall curves of saved predictions: ``pr_curve.py CONFIG results.pkl --out pr.png``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.analysis_tools`.
"""
from rcnn_plugins.cli.analysis_tools import pr_curve_main

if __name__ == '__main__':
    pr_curve_main()
