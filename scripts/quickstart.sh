#!/usr/bin/env bash
# A newcomer's first command: set everything up, export the RT-1 models (seeded random weights
# until a trained bundle ships) and benchmark the cached policy step against the naive one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
venv=${RT_ROS_VENV:-.venv}
if [ ! -f models/rt1-tiny/manifest.yaml ]; then
  "$venv/bin/rt-ros" export --preset rt1-tiny --out models/rt1-tiny
fi
"$venv/bin/rt-ros" bench --preset rt1-tiny rt1 "$@"
