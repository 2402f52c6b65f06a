"""What the launch tests share: their ROS domains, why they would skip, the model bundle, a policy
params file steered to arm mode, a test node spun by the test's own thread, and the cleanup of
what they write to the temp dir. Imported by the launch tests only, once `launch_testing` and
`launch_ros` imported (it needs rclpy and ament_index_python, as they do)."""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
import yaml
from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from geometry_msgs.msg import TwistStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from rt_ros.runtime.action_space import load_action_space

# ROS_DOMAIN_IDs of the launch tests, each file its own, chosen by pid within its range; all
# within 0-101 (test/nodes/conftest.py takes 1-60, `rt-ros eval` 61 and up).
DOMAIN_IDS = {
    "robot": range(71, 79),
    "sim": range(79, 87),
    "signals": range(87, 102),
}
STARTUP_TIMEOUT_S = 90.0


def domain_id(test: str) -> int:
    ids = DOMAIN_IDS[test]
    return ids[os.getpid() % len(ids)]


def _skip_reason() -> str | None:
    """Why the launch tests cannot run here, or None."""
    try:
        get_package_share_directory("rt_ros")
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH is not set at all
        return (
            "rt_ros is not in the ament index: run the tests through scripts/test.sh (it puts "
            "the prefix setup.sh made on AMENT_PREFIX_PATH), or colcon build and source "
            "install/setup.bash"
        )
    if not (os.environ.get("RT_ROS_TEST_BUNDLE") or importlib.util.find_spec("torch")):
        return (
            "no model bundle: set RT_ROS_TEST_BUNDLE to an exported rt1-tiny bundle folder, or "
            "install torch (the train extra) to export one"
        )
    return None


SKIP_REASON = _skip_reason()


def share_dir() -> Path:
    return Path(get_package_share_directory("rt_ros"))


@functools.cache
def scratch_dir() -> Path:
    """This process's temporary folder for bundles and params files, removed when it exits."""
    folder = Path(tempfile.mkdtemp(prefix="rt_ros_launch_test_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.cache
def model_bundle() -> Path:
    """RT_ROS_TEST_BUNDLE, or the bundled model exported now into the scratch folder as
    `rt-ros export --shipped` exports it to models/rt1-tiny: from the shipped weights
    (models/rt1-tiny.pt), or seeded random ones while none ship (needs torch, ~30 s)."""
    if folder := os.environ.get("RT_ROS_TEST_BUNDLE"):
        return Path(folder)
    from rt_ros.model.shipped import ensure_default_bundle

    return ensure_default_bundle(scratch_dir() / "rt1-tiny")


def always_arm_params_file(section_key: str) -> Path:
    """config/policy.yaml with its section keyed `section_key` and an action space whose mode can
    only be `arm`: the untrained model's arm commands then reach the driver instead of being
    zeroed by base/terminate."""
    folder = Path(tempfile.mkdtemp(prefix="always_arm_", dir=scratch_dir()))
    space = load_action_space("rt1_everyday_robots").to_dict()
    space["name"] = "rt1_always_arm"
    for dimension in space["dimensions"]:
        if dimension.get("role") == "mode":
            dimension["values"], dimension["labels"] = [dimension["values"][0]], ["arm"]
    space_path = folder / "always_arm.yaml"
    space_path.write_text(yaml.safe_dump(space, sort_keys=False))
    shipped = yaml.safe_load((share_dir() / "config" / "policy.yaml").read_text())
    # The shipped file keys its one section `/**/policy_node` (any namespace).
    (section,) = shipped.values()
    section["ros__parameters"]["action_space"] = str(space_path)
    params_path = folder / "policy.yaml"
    params_path.write_text(yaml.safe_dump({section_key: section}, sort_keys=False))
    return params_path


def twist_is_zero(msg: TwistStamped) -> bool:
    t = msg.twist
    return not any((t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z))


def launch_params_files(proc_info) -> list[Path]:
    """Every --params-file the launched processes were started with."""
    files = []
    for process in proc_info.processes():
        cmd = process.process_details["cmd"]
        files += [Path(cmd[i + 1]) for i, arg in enumerate(cmd[:-1]) if arg == "--params-file"]
    return files


class LaunchTestNodeMixin:
    """A test node in its own context, spun by the test's thread with deadline waits."""

    NODE_NAME = "rt_ros_launch_test"
    NAMESPACE = ""
    DOMAIN_ID = 0

    @classmethod
    def setUpClass(cls) -> None:
        cls.context = Context()
        rclpy.init(context=cls.context, domain_id=cls.DOMAIN_ID)
        cls.node = rclpy.create_node(cls.NODE_NAME, namespace=cls.NAMESPACE, context=cls.context)
        cls.executor = SingleThreadedExecutor(context=cls.context)
        cls.executor.add_node(cls.node)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.executor.shutdown()
        cls.node.destroy_node()
        rclpy.try_shutdown(context=cls.context)

    def spin_until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout_s} s")
            self.executor.spin_once(timeout_sec=0.05)
