"""Training-step and inference time of several configs on the same real batches, ratios to the first:

    python tools/benchmark_configs.py configs/faster_rcnn/faster-rcnn_r18_fpn_demo.py \
        configs/cascade_rcnn/cascade-rcnn_r18_fpn_demo.py [--data data/demo] [--rounds 20] [--json out.json]

A wrapper: the logic is in :mod:`benchmarks.configs`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # a checkout without install

from benchmarks.configs import main  # noqa: E402

if __name__ == '__main__':
    main()
