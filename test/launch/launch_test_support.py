"""What the launch tests share: the model bundle, a policy params file steered to arm mode, and a
test node spun by the test's own thread. Imported by the launch tests only (it needs rclpy and
ament_index_python, as they do)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
import yaml
from ament_index_python.packages import get_package_share_directory
from geometry_msgs.msg import TwistStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from rt_ros.runtime.action_space import load_action_space

STARTUP_TIMEOUT_S = 90.0

BUNDLE_REASON = (
    None
    if os.environ.get("RT_ROS_TEST_BUNDLE") or importlib.util.find_spec("torch")
    else "no model bundle: set RT_ROS_TEST_BUNDLE to an exported bundle folder, or install "
    "torch (the train extra) to export one"
)


def share_dir() -> Path:
    return Path(get_package_share_directory("rt_ros"))


def model_bundle() -> Path:
    """RT_ROS_TEST_BUNDLE, or a seeded rt1-tiny bundle exported now and remembered there."""
    if folder := os.environ.get("RT_ROS_TEST_BUNDLE"):
        return Path(folder)
    from rt_ros.model.export import export_bundle

    folder = Path(tempfile.mkdtemp(prefix="rt_ros_launch_test_bundle_"))
    export_bundle(folder, "rt1-tiny", seed=0)
    os.environ["RT_ROS_TEST_BUNDLE"] = str(folder)
    return folder


def always_arm_params_file() -> Path:
    """config/policy.yaml with an action space whose mode can only be `arm`: the untrained
    model's arm commands then reach the driver instead of being zeroed by base/terminate."""
    folder = Path(tempfile.mkdtemp(prefix="rt_ros_launch_test_params_"))
    space = load_action_space("rt1_everyday_robots").to_dict()
    space["name"] = "rt1_always_arm"
    for dimension in space["dimensions"]:
        if dimension.get("role") == "mode":
            dimension["values"], dimension["labels"] = [dimension["values"][0]], ["arm"]
    space_path = folder / "always_arm.yaml"
    space_path.write_text(yaml.safe_dump(space, sort_keys=False))
    params = yaml.safe_load((share_dir() / "config" / "policy.yaml").read_text())
    # The shipped file keys its section `/**/policy_node` (any namespace).
    section = next(value for key, value in params.items() if key.endswith("policy_node"))
    section["ros__parameters"]["action_space"] = str(space_path)
    params_path = folder / "policy.yaml"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    return params_path


def twist_is_zero(msg: TwistStamped) -> bool:
    t = msg.twist
    return not any((t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z))


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
