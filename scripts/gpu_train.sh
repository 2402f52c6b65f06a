#!/usr/bin/env bash
# Training on a lent GPU machine (the `device` tool), prepared here. That machine has python3 with
# PyTorch and CUDA but cannot collect here's recordings (2.9 GB of MCAP) nor fetch anything, and
# one call carries at most 64 MiB; so the training store travels instead (frames already resized
# to the model's input, tokens, instruction embeddings), compressed with zstd (about 10x on the
# simulator's frames), in 50 MB chunks. `rt-ros train --store` without `--data` trains on it as
# it is: no recordings and no sentence encoder are needed there. Only model.pt comes back
# (export it here: `rt-ros export --checkpoint`).
#
#   here:   bash scripts/gpu_train.sh prepare [STORE] [INIT]  # .gpu/t00 ... (ignored by git)
#           STORE: a built store [runs/recipe/round2/store: expert + both DAgger rounds];
#           INIT: weights to fine-tune from (they travel, and `run` starts from them); ~1 min.
#   there:  bash scripts/gpu_train.sh receive t00   # one call per chunk but the last, carry .gpu/tNN
#   there:  bash scripts/gpu_train.sh run tNN ARGS  # the last chunk: unpack, then
#           `rt-ros train --store ... ARGS` (--preset, --epochs or --max-steps, --lr, ...),
#           stopped after TRAIN_LIMIT_S [520] s; run.json, the logs,
#           the curves and model.pt come back in $OUT. `resume ARGS` continues a run stopped by
#           the limit (the machine must still be held: /tmp outlives a call only while it is).
set -euo pipefail
cd "$(dirname "$0")/.."
CHUNK_MB=${CHUNK_MB:-50}
TRAIN_LIMIT_S=${TRAIN_LIMIT_S:-520}
PY_VERSION=${PY_VERSION:-3.12}  # the GPU machine's python3 (the wheels' version)
ROOT=/tmp/gpu-train  # where `unpack` puts everything on the GPU machine

prepare() {
  local store=${1:-runs/recipe/round2/store} init=${2:-} stage=.gpu/train-stage
  [ -f "$store/store.json" ] || { echo "no training store at $store" >&2; exit 2; }
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
  rm -rf .gpu/t?? "$stage" && mkdir -p "$stage/wheels"
  # The recordings' reader is imported by the trainer (mcap), and zstandard unpacks the store.
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$stage/wheels" \
    mcap==1.6.0 mcap-ros2-support==0.6.0 lz4==4.4.5 zstandard==0.25.0
  [ -z "$init" ] || cp "$init" "$stage/init.pt"
  tar -cf - -C "$store" store.json tokens.npy embeddings.npy frames.u8 |
    zstd -q -3 -T0 -o "$stage/store.tar.zst"
  tar -cf - -C "$stage" . | split -b "${CHUNK_MB}M" -d - .gpu/t
  rm -rf "$stage"
  ls -l .gpu/t??
}

receive() {  # receive tNN: keep a carried chunk on the machine (/tmp outlives the call)
  mkdir -p /tmp/gpu-train-chunks && cp ".gpu/$1" /tmp/gpu-train-chunks/
  ls -l /tmp/gpu-train-chunks
}

unpack() {  # unpack tNN: the last chunk; then the wheels and the store
  receive "$1"
  rm -rf "$ROOT" && mkdir -p "$ROOT/site" "$ROOT/store"
  cat /tmp/gpu-train-chunks/t* | tar -x -C "$ROOT"
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$ROOT/site" \
    "$ROOT"/wheels/*.whl
  PYTHONPATH="$ROOT/site" python3 -c "
import sys, tarfile, zstandard
with open('$ROOT/store.tar.zst', 'rb') as packed:
    with zstandard.ZstdDecompressor().stream_reader(packed) as stream:
        tarfile.open(fileobj=stream, mode='r|').extractall('$ROOT/store', filter='data')
"
  rm "$ROOT/store.tar.zst"
  ls -l "$ROOT/store"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "no nvidia-smi"
}

train() {  # train [--resume] ARGS...: rt-ros train on the unpacked store, within the time limit
  export PYTHONPATH="$ROOT/site:$PWD" PYTHONUNBUFFERED=1
  local out=${OUT:-$ROOT/out} init=()
  mkdir -p "$out"
  [ -f "$ROOT/init.pt" ] && init=(--init "$ROOT/init.pt")
  local status=0
  timeout --signal=INT "$TRAIN_LIMIT_S" python3 -m rt_ros.cli train \
    --store "$ROOT/store" --out "$ROOT/run" "${init[@]}" "$@" 2>&1 |
    tee -a "$out/train.txt" || status=$?
  for file in run.json train_log.csv val_log.csv curves.png model.pt; do
    [ ! -f "$ROOT/run/$file" ] || cp "$ROOT/run/$file" "$out/"
  done
  [ -f "$ROOT/run/model.pt" ] || echo "stopped before the end (status $status): \
continue with \`bash scripts/gpu_train.sh resume ARGS\` while the machine is held"
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  receive) receive "$2" ;;
  unpack) unpack "$2" ;;
  run) chunk=$2; shift 2; unpack "$chunk"; train "$@" ;;
  resume) shift; train --resume "$@" ;;
  *) echo "usage: $0 prepare [STORE] [INIT] | receive tNN | run tNN ARGS... | resume ARGS..." >&2
    exit 2 ;;
esac
