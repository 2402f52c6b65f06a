#!/usr/bin/env bash
# The GPU measurement of issue 11, prepared here and run on a lent GPU machine (the `device` tool),
# which has python3 with PyTorch and CUDA but no onnxruntime-gpu, no rt_ros dependencies beyond
# the common ones, and a limit on what one call carries. Nothing is exported there: the bundles
# travel, with their instructions precomputed (the 90 MB sentence encoder stays here).
#
#   here:   bash scripts/gpu_bench.sh prepare      # .gpu/c00 ... (ignored by git), about 3 min
#   there:  bash scripts/gpu_bench.sh receive c00  # one call per chunk but the last, carry .gpu/cNN
#   there:  bash scripts/gpu_bench.sh run cNN      # the last chunk: unpack, then bench into $OUT
#   (or `unpack cNN`, then `bench ARGS...` for other `rt-ros bench` runs, bundles in /tmp/gpu-bench)
#
# `run` times rt1 and rt1-tiny on ONNX Runtime's CUDA provider (IO binding at batch 1) at f32,
# tf32 and f16 with CUDA graphs, then again without, each beside ONNX Runtime on the CPU (the
# reference of every ratio and of the action-token agreement over recorded windows). TensorRT is not in the carried
# onnxruntime-gpu (its provider library alone is larger than a call may carry).
set -euo pipefail
cd "$(dirname "$0")/.."
CHUNK_MB=${CHUNK_MB:-50}  # per call, beside the working tree (the limit is 64 MiB in all)
STEPS=${STEPS:-300}
BACKENDS=${BACKENDS:-cuda cuda:tf32 cuda:f16}

prepare() {
  local stage=.gpu/stage
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >>.git/info/exclude
  rm -rf .gpu && mkdir -p "$stage/recordings" "$stage/wheels"
  [ -f .ortgpu/c00 ] || bash ../shared/tools/ort-gpu-chunks.sh
  cat .ortgpu/c* >"$stage/ort.tar.xz"
  for family in pick move_near knock_over place_upright drawer; do
    mkdir -p "$stage/recordings/$family"
    find "data/expert/$family" -name '*.mcap' | sort -V | awk 'NR <= 4' |
      xargs -I{} cp {} "$stage/recordings/$family/"
  done
  [ -f models/rt1/manifest.yaml ] || .venv/bin/rt-ros export --preset rt1 --out models/rt1
  [ -f models/rt1-tiny/manifest.yaml ] || .venv/bin/rt-ros export --shipped
  for model in rt1 rt1-tiny; do
    .venv/bin/rt-ros precompute-instructions --model "models/$model" \
      --out "$stage/bundles/$model" --recordings "$stage/recordings" --bench-instruction
  done
  # The recordings' readers for the agreement check (pure Python, and two compressors).
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$stage/wheels" \
    mcap==1.6.0 mcap-ros2-support==0.6.0 lz4==4.4.5 zstandard==0.25.0
  tar -cf - -C "$stage" . | split -b "${CHUNK_MB}M" -d - .gpu/c
  rm -rf "$stage"
  ls -l .gpu
}

receive() {  # receive cNN: keep a carried chunk on the machine (/tmp outlives the call)
  mkdir -p /tmp/gpu-chunks && cp ".gpu/$1" /tmp/gpu-chunks/
  ls -l /tmp/gpu-chunks
}

ROOT=/tmp/gpu-bench  # where `unpack` puts everything on the GPU machine

unpack() {  # unpack cNN: the last chunk; then ONNX Runtime's CUDA build, bundles, recordings
  receive "$1"
  rm -rf "$ROOT" && mkdir -p "$ROOT/ort" "$ROOT/site"
  cat /tmp/gpu-chunks/c* | tar -x -C "$ROOT"
  xz -d <"$ROOT/ort.tar.xz" | tar -x -C "$ROOT/ort"
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$ROOT/site" \
    "$ROOT"/wheels/*.whl
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv
}

bench() {  # bench ARGS...: `rt-ros bench ARGS` on the CUDA build (bundles in /tmp/gpu-bench)
  export PYTHONPATH="$ROOT/ort:$ROOT/site:$PWD" PYTHONUNBUFFERED=1
  # onnxruntime.preload_dlls() finds the CUDA and cuDNN libraries of the machine's PyTorch;
  # cuDNN's log of execution plans it tries and rejects (float16 convolutions) is left out.
  local cli='import sys, onnxruntime; onnxruntime.preload_dlls(); from rt_ros.cli import main; '
  cli+='sys.exit(main(sys.argv[1:]))'
  python3 -c "$cli" bench "$@" 2>&1 | grep -v 'cudnn_frontend'
}

run() {  # run cNN: unpack, then the two measurements into $OUT
  local out=${OUT:-$ROOT}
  unpack "$1" | tee "$out/gpu.txt"
  local models=(--model "$ROOT/bundles/rt1" "$ROOT/bundles/rt1-tiny" --steps "$STEPS"
    --recordings "$ROOT/recordings")
  # Each run's figures are written as it ends, so a failure in the second keeps the first's.
  bench "${models[@]}" --backends $BACKENDS --cuda-graph --json "$out/bench_cuda_graph.json" |
    tee "$out/bench_cuda_graph.txt" || echo "bench with CUDA graphs failed"
  bench "${models[@]}" --backends $BACKENDS --agreement-windows 0 --json "$out/bench_cuda.json" |
    tee "$out/bench_cuda.txt" || echo "bench failed"
}

case "${1:-}" in
  prepare) prepare ;;
  receive) receive "$2" ;;
  unpack) unpack "$2" ;;
  bench) shift; bench "$@" ;;
  run) run "$2" ;;
  *) echo "usage: $0 prepare | receive cNN | unpack cNN | bench ARGS... | run cNN" >&2; exit 2 ;;
esac
