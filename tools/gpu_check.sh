#!/usr/bin/env bash
# GPU check for any machine with a CUDA GPU and Python 3 with torch + torchvision (CUDA build):
#
#   bash tools/gpu_check.sh [--wheels DIR] [--out DIR]
#
#   --wheels DIR  offline install: pip-install DIR/*.whl (mmengine, mmcv-lite, pycocotools and their
#                 pure-Python dependencies) into a temporary folder put first on PYTHONPATH, without
#                 a package index. Without it the installed environment is used (pip install -e '.[test]').
#   --out DIR     where the results go (default: $OUT if set, else ./gpu_check_out).
#
# Steps (each with its own timeout; under ~8 minutes on one recent data-centre GPU):
#   1. the CUDA-marked tests (tests/test_cuda.py: the fast path and fp16 vs fp32, no host sync);
#   2. the benchmark on CUDA at 800x1333, batch 2 and 8, fp32 and AMP (fp16), eager and fast, ours vs
#      torchvision, with the peak CUDA memory of a training step.
# Writes gpu_check.json (GPU name, test outcome, both benchmark results), cuda_tests.log, bench_b*.log.
# Exit status: 0 all passed, 1 a step failed, 2 bad arguments or no CUDA device.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=""
OUT=${OUT:-$PWD/gpu_check_out}
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS=${2:?--wheels needs a folder}; shift 2 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"

if [ -n "$WHEELS" ]; then
  ls "$WHEELS"/*.whl >/dev/null 2>&1 || { echo "error: no .whl files in $WHEELS" >&2; exit 2; }
  SITE=$(mktemp -d)
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=$SITE:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import torch, mmengine, mmcv, pycocotools; assert torch.cuda.is_available(), 'no CUDA device'" \
  || { echo "error: needs torch with a CUDA device, mmengine, mmcv-lite and pycocotools (or --wheels DIR)" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1 \
  || python3 -c "import torch; print(torch.cuda.get_device_name(0))" > "$OUT/gpu.txt"

# 1. CUDA-marked tests.
timeout 150 python3 -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider > "$OUT/cuda_tests.log" 2>&1
tests_rc=$?
tail -5 "$OUT/cuda_tests.log"

# 2. Benchmark: fp32 eager, AMP eager, AMP fast path; inference and a training step per batch size.
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
