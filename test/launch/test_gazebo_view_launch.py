"""launch/gazebo.launch.py and launch/view.launch.py import and build their launch descriptions.

Running them needs Gazebo Harmonic, ros_gz, gz_ros2_control and RViz (a ROS 2 Jazzy desktop), so
only the descriptions are checked: every argument is described and the expected ones exist.
Skipped without the ROS 2 `launch` and `launch_ros` packages and rt_ros in the ament index
(`bash scripts/test.sh test/launch` with the launch wheels, or `colcon build`, then
`colcon test --packages-select rt_ros`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REASON = (
    "the launch files need launch_ros (a ROS 2 install, or the launch wheels that "
    "scripts/setup.sh installs) and rt_ros in the ament index (scripts/test.sh, or colcon build)"
)
pytest.importorskip("launch", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)

from ament_index_python.packages import (  # noqa: E402
    PackageNotFoundError,
    get_package_share_directory,
)
from launch.actions import DeclareLaunchArgument  # noqa: E402

LAUNCH_DIR = Path(__file__).resolve().parents[2] / "launch"
EXPECTED_ARGUMENTS = {
    "gazebo.launch.py": {"model_path", "use_sim_time", "gazebo_params_file", "world", "headless"},
    "view.launch.py": {"joint_state_publisher", "use_gui", "use_sim_time", "rviz_config"},
}


@pytest.fixture(autouse=True)
def installed_package() -> None:
    try:
        get_package_share_directory("rt_ros")
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH is not set at all
        pytest.skip(REASON)


@pytest.mark.parametrize("file", sorted(EXPECTED_ARGUMENTS))
def test_launch_description_builds(file: str):
    spec = importlib.util.spec_from_file_location(file.removesuffix(".py"), LAUNCH_DIR / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    arguments = [e for e in description.entities if isinstance(e, DeclareLaunchArgument)]
    names = {argument.name for argument in arguments}
    assert EXPECTED_ARGUMENTS[file] <= names
    assert len(names) == len(arguments), "an argument is declared twice"
    for argument in arguments:
        assert argument.description
        assert argument.description != "no description given"
