"""Benchmarks of rcnn_plugins against torchvision (``tools/benchmark.py``, ``tools/benchmark_components.py``)
and of the COCO evaluation backends (``tools/benchmark_eval.py``). Not part of the installed package:
run from a checkout (the tools put the repository root on ``sys.path``)."""
