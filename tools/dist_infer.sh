#!/usr/bin/env bash
# Folder inference over N processes (GPUs, or CPU processes): each takes a disjoint shard of the
# inputs, rank 0 merges --coco-json. Add --resume to continue a killed run.
#   bash tools/dist_infer.sh N INPUTS... CONFIG CHECKPOINT --out-dir OUT [--coco-json FILE] [--resume]
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 NPROC INPUTS... CONFIG CHECKPOINT --out-dir OUT [tools/infer.py options]" >&2
    exit 2
fi
NPROC=$1
shift
PORT=${PORT:-29511}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"  # input paths stay relative to the caller's folder
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "${PYTHON:-python}" -m torch.distributed.run --nproc-per-node="$NPROC" \
    --master-port="$PORT" "$ROOT/tools/infer.py" "$@" --launcher pytorch
