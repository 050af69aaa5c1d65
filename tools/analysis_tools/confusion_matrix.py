"""Confusion matrix of saved predictions: ``confusion_matrix.py CONFIG results.pkl OUT_DIR``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.analysis_tools`.
"""
from rcnn_plugins.cli.analysis_tools import confusion_matrix_main

if __name__ == '__main__':
    confusion_matrix_main()
