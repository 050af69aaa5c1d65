#!/usr/bin/env bash
# One-call GPU check (issue 10), for a session that is lent the accelerator:
#
#   run(command="bash tools/gpu_check.sh", carry=[".whl"], timeout_s=540)
#
# Before that, on the CPU machine: bash ../shared/gpu/wheels.sh (fills .whl/ with mmengine,
# mmcv-lite, pycocotools and their pure-Python dependencies; the GPU machine has torch,
# torchvision, numpy, opencv, matplotlib, pytest). This script then
#   1. installs .whl/*.whl into /tmp/site (no index, no dependencies resolved: all are there),
#   2. runs the CUDA-marked tests (tests/test_cuda.py: fast path and fp16 vs fp32, no host sync),
#   3. runs the benchmark on CUDA at 800x1333, batch 2 and 8, fp32 and AMP (fp16), eager and fast,
#      ours vs torchvision, with peak CUDA memory of a training step,
# and writes everything under $OUT (the folder the run tool brings back; ./gpu_check_out otherwise):
#   gpu_check.json (GPU name, test outcome, both benchmark results), cuda_tests.log, bench_b*.log.
# Budget: under ~8 minutes on one H200 (each step has its own timeout), leaving time for a rerun.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"

ls .whl/*.whl >/dev/null 2>&1 || { echo "no .whl/*.whl: run bash ../shared/gpu/wheels.sh first and carry .whl" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
python3 -c "import torch, mmengine, mmcv, pycocotools; assert torch.cuda.is_available(), 'no CUDA device'" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1

# 2. CUDA-marked tests (plus the CPU fast-path tests as a sanity check of the install).
timeout 150 python3 -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider > "$OUT/cuda_tests.log" 2>&1
tests_rc=$?
tail -5 "$OUT/cuda_tests.log"

# 3. Benchmark: fp32 eager, AMP eager, AMP fast path; inference and a training step per batch size.
bench_rc=0
for b in 2 8; do
  timeout 170 python3 tools/benchmark.py --device cuda --batch "$b" --size 800x1333 \
      --variants fp32 amp amp-fast --iters 10 --warmup 3 --memory-variants fp32 amp-fast \
      --memory-modes train --json "$OUT/bench_b$b.json" > "$OUT/bench_b$b.log" 2>&1 || bench_rc=$?
  sed -n '/^row /,/^machine/p' "$OUT/bench_b$b.log"
done

python3 - "$OUT" "$tests_rc" "$bench_rc" <<'PY'
import json, os, sys
out, tests_rc, bench_rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
summary = dict(gpu=open(os.path.join(out, 'gpu.txt')).read().strip(), cuda_tests_rc=tests_rc,
               benchmark_rc=bench_rc, benchmark={})
for b in (2, 8):
    path = os.path.join(out, f'bench_b{b}.json')
    if os.path.exists(path):
        summary['benchmark'][f'batch_{b}'] = json.load(open(path))
json.dump(summary, open(os.path.join(out, 'gpu_check.json'), 'w'), indent=1)
print('wrote', os.path.join(out, 'gpu_check.json'))
PY
exit $(( tests_rc != 0 || bench_rc != 0 ))
