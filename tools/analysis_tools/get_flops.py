"""FLOPs and parameters: ``get_flops.py CONFIG [--shape 800 1333]``.

A wrapper: the flags and the logic are in :mod:`rcnn_plugins.cli.analysis_tools`.
"""
from rcnn_plugins.cli.analysis_tools import get_flops_main

if __name__ == '__main__':
    get_flops_main()
