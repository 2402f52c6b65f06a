#!/usr/bin/env bash
# Sets up rt_ros in ./.venv on a fresh Debian/Ubuntu machine: Python packages (runtime, export and
# training, the PyPI ROS 2 wheels, test tools). Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${RT_ROS_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
stamp="$venv/.rt_ros-installed"
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "installing rt_ros and its extras into $venv (a few minutes the first time)"
  "$venv/bin/python" -m pip install --quiet --editable ".[train,ros,dev]"
  touch "$stamp"
fi
