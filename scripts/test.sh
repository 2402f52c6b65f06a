#!/usr/bin/env bash
# Runs the whole test suite (unit, export parity, nodes over DDS on loopback, launch tests), after
# setup.sh.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
# DDS discovery stays on this machine; tests pick their own ROS_DOMAIN_IDs.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
venv=${RT_ROS_VENV:-.venv}
# The launch tests find rt_ros through the ament index: the prefix setup.sh links to this checkout
# once the launch stack is there (test/launch; a sourced ROS install's prefixes stay after it).
if [ -d "$venv/ament_prefix" ]; then
  venv_dir=$(cd "$venv" && pwd)
  export AMENT_PREFIX_PATH="$venv_dir/ament_prefix:$venv_dir${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
fi
"$venv/bin/python" -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
