#!/usr/bin/env bash
# Sets up rt_ros in ./.venv on a fresh Debian/Ubuntu machine: OSMesa for offscreen rendering, then
# the Python packages (runtime, export and training, the PyPI ROS 2 wheels, the MuJoCo simulator,
# kinematics, test tools). Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Offscreen rendering for the simulated head camera (MuJoCo through OSMesa).
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing libosmesa6 (offscreen OpenGL for the simulator)"
    apt-get update -qq && apt-get install -y -qq libosmesa6 >/dev/null
  else
    echo "libosmesa6 is missing: run 'sudo apt-get install libosmesa6' for the simulator" >&2
  fi
fi

venv=${RT_ROS_VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
stamp="$venv/.rt_ros-installed"
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "installing rt_ros and its extras into $venv (a few minutes the first time)"
  "$venv/bin/python" -m pip install --quiet --editable ".[train,ros,sim,kinematics,dev]"
  touch "$stamp"
fi
