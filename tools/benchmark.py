"""Side-by-side benchmark: our R50-FPN Faster R-CNN against torchvision's, set to the same work.

    python tools/benchmark.py                       # CPU: fp32, fp32 fast path, bf16 fast path
    python tools/benchmark.py --device cuda --infer-batches 2 8 --train-batch 2 --variants fp32 amp-fast
    python tools/benchmark.py --profile --only infer --profile-variant fp32
    python tools/benchmark.py --cpu-table          # every CPU path incl. ONNX Runtime / OpenVINO / int8

Rows: inference at batch 1 and 4 and one training step at batch 2 (800x1333), each in every
variant (fp32 / bf16 (fp16 on CUDA), eager / fast path: see benchmarks/variants.py),
both models interleaved on the same batch with the same weights; peak memory of a training step
per model in child processes. ``--help`` lists the options; the logic is in
:mod:`benchmarks` (models, inputs, steps, memory, profile, cli).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # a checkout without install

from benchmarks.cli import build_parser, format_table, main, run_benchmark  # noqa: E402,F401
from benchmarks.models import build_models, load_config, tv_kwargs_from_config  # noqa: E402,F401

if __name__ == '__main__':
    if '--cpu-table' in sys.argv[1:]:  # the CPU latency table: benchmarks/cpu_table.py
        from benchmarks.cpu_table import main as cpu_table_main
        cpu_table_main()
    else:
        main()
