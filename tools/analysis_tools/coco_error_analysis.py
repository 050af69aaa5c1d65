"""COCO error analysis of a results json (MMDetection's tool, name, arguments and PNGs):
``coco_error_analysis.py RESULTS.json OUT_DIR --ann ANN.json [--extraplots]``.

A wrapper: the flags are in :mod:`rcnn_plugins.cli.analysis_tools`, the logic in
:mod:`rcnn_plugins.analysis.coco_error_analysis` (docs/ERROR_ANALYSIS.md).
"""
from rcnn_plugins.cli.analysis_tools import coco_error_analysis_main

if __name__ == '__main__':
    coco_error_analysis_main()
