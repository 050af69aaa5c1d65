#!/usr/bin/env bash
# Multi-process / multi-node testing with torchrun:
#   tools/dist_test.sh CONFIG CHECKPOINT NGPUS [test.py args...]
# Multi-node: run on every node with NNODES, NODE_RANK, MASTER_ADDR (and PORT) set.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
TOOLS_DIR=$(dirname "$0")
PYTHON=${PYTHON:-python}

PYTHONPATH="$TOOLS_DIR/..:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$TOOLS_DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
