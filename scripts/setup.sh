#!/usr/bin/env bash
# Sets up rt_ros in ./.venv on a fresh Debian/Ubuntu machine: OSMesa for offscreen rendering, then
# the Python packages (runtime, export and training, the PyPI ROS 2 wheels, the MuJoCo simulator,
# kinematics, the OpenVINO backend, the policy server and its Ray Serve deployment, test tools).
# Safe to run again; it only installs what is missing.
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
  "$venv/bin/python" -m pip install --quiet --editable ".[train,ros,sim,kinematics,openvino,serve,ray,dev]"
  touch "$stamp"
fi

# The ROS 2 launch stack for the launch tests (test/launch) where no ROS install provides it:
# upstream wheels that run beside the PyPI rclpy (../shared/wheels/ros2-launch/README.md).
launch_wheels=${RT_ROS_LAUNCH_WHEELS:-../shared/wheels/ros2-launch}
if [ -d "$launch_wheels" ] \
  && ! "$venv/bin/python" -c "import launch_testing_ros, osrf_pycommon" 2>/dev/null; then
  echo "installing the ROS 2 launch stack from $launch_wheels into $venv"
  "$venv/bin/python" -m pip install --quiet osrf-pycommon  # launch's one dependency not there
  "$venv/bin/python" -m pip install --quiet --no-deps "$launch_wheels"/*.whl
fi

# launch_ros finds a package's executables and share files through the ament index, and an
# editable install puts none in the venv: $venv/ament_prefix links them to this checkout.
# scripts/test.sh puts it on AMENT_PREFIX_PATH.
if "$venv/bin/python" -c "import launch_ros" 2>/dev/null; then
  prefix="$venv/ament_prefix"
  mkdir -p "$prefix/share/ament_index/resource_index/packages" "$prefix/share/rt_ros" \
    "$prefix/lib/rt_ros"
  : >"$prefix/share/ament_index/resource_index/packages/rt_ros"
  for item in package.xml config launch urdf worlds rviz models; do
    ln -sfn "$PWD/$item" "$prefix/share/rt_ros/$item"
  done
  # lib/rt_ros/: rt_ros's console scripts (as colcon installs them).
  scripts=$("$venv/bin/python" -c 'from importlib.metadata import entry_points as points
print(*(p.name for p in points(group="console_scripts") if p.value.startswith("rt_ros.")))')
  bin_dir=$(cd "$venv/bin" && pwd)
  for script in $scripts; do
    ln -sfn "$bin_dir/$script" "$prefix/lib/rt_ros/$script"
  done
fi
