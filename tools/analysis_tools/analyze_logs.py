"""Plot training curves or iteration times of json logs: ``analyze_logs.py plot_curve|cal_train_time LOG.json ...``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.analysis_tools`.
"""
from rcnn_plugins.cli.analysis_tools import analyze_logs_main

if __name__ == '__main__':
    analyze_logs_main()
