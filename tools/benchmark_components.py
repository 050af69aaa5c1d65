"""Component benchmarks of the RPN's box plumbing (anchor targets, proposals), ours against a plain
reference and torchvision: ``python tools/benchmark_components.py [--json out.json]``.

A wrapper: the logic is in :mod:`benchmarks.components`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # a checkout without install

from benchmarks.components import build_parser, format_table, main, run_components  # noqa: E402,F401

if __name__ == '__main__':
    main()
