#!/usr/bin/env bash
# A newcomer's first command: set everything up, export the bundled RT-1 model (rt1-tiny, trained
# in simulation: models/rt1-tiny.pt -> models/rt1-tiny/) and run the main job: the simulated robot
# following an instruction (`rt-ros demo`), which writes runs/demo/demo.mp4 and a summary.
# Extra arguments go to `rt-ros demo`, e.g. --task pick --seed 3 --instruction "lift the apple";
# without any: opening the drawer on a layout seed training never saw.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
venv=${RT_ROS_VENV:-.venv}
"$venv/bin/rt-ros" export --shipped
if [ $# -eq 0 ]; then
  set -- --task drawer --seed 100000
fi
"$venv/bin/rt-ros" demo --model models/rt1-tiny "$@"
