"""Benchmark logic behind ``tools/benchmark.py`` (our detector vs torchvision's) and
``tools/benchmark_eval.py`` (COCO evaluation backends). Not imported by the rest of the package."""
