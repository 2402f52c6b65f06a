"""Launch test of launch/robot.launch.py: the policy node and the driver node (ros_topics backend)
from the installed launch file, in a namespace, with an exported rt1-tiny bundle and a policy
params file keyed plainly `policy_node:` (as a user writes one), which applies in the namespace
only through launch_helpers' rewrite. An instruction and camera frames go in; policy commands on
cmd/arm and the driver's output to MoveIt Servo, cmd_vel and the gripper controller come out;
both nodes exit 0 when the launch is shut down, and the params files the launch wrote are gone.

Runs with launch_testing and launch_ros and rt_ros in the ament index: `bash scripts/test.sh
test/launch` (the launch wheels), `colcon test --packages-select rt_ros` (a ROS install), or
`launch_test test/launch/test_robot_launch.py`. The bundle: the folder in RT_ROS_TEST_BUNDLE,
else one exported here (needs torch, ~30 s).
"""

from __future__ import annotations

import math
import os
import sys
import unittest
from pathlib import Path

import numpy as np
import pytest

REASON = (
    "launch tests need launch_testing and launch_ros: a ROS 2 install (colcon test) or the "
    "launch wheels that scripts/setup.sh installs from ../shared/wheels/ros2-launch"
)
pytest.importorskip("launch_testing", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)

import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description import LaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402

from rt_ros.nodes.image_conversion import rgb_to_image_msg  # noqa: E402
from rt_ros.nodes.qos import COMMAND_QOS, INSTRUCTION_QOS, SENSOR_QOS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # launch_test loads files by path
from launch_test_support import (  # noqa: E402
    SKIP_REASON,
    STARTUP_TIMEOUT_S,
    LaunchTestNodeMixin,
    always_arm_params_file,
    domain_id,
    launch_params_files,
    model_bundle,
    share_dir,
    twist_is_zero,
)

DOMAIN_ID = domain_id("robot")  # loopback only
NAMESPACE = "robot1"
CONTROL_RATE_HZ = 10
CAMERA_RATE_HZ = 15.0
COMMAND_TIMEOUT_S = 20.0


@pytest.mark.skipif(SKIP_REASON is not None, reason=str(SKIP_REASON))
@pytest.mark.rostest
def generate_test_description() -> LaunchDescription:
    if SKIP_REASON is not None:
        raise unittest.SkipTest(SKIP_REASON)
    os.environ.update(ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    launch_file = share_dir() / "launch" / "robot.launch.py"
    arguments = {
        "model_path": str(model_bundle()),
        # Keyed `policy_node:`, which rcl applies to /policy_node only, not /robot1/policy_node.
        "policy_params_file": str(always_arm_params_file("policy_node")),
        "namespace": NAMESPACE,
        "control_rate_hz": str(CONTROL_RATE_HZ),  # an integer: the launch file makes it 10.0
        "providers": "cpu",
        "log_level": "info",
    }
    return LaunchDescription(
        [
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(str(launch_file)),
                launch_arguments=arguments.items(),
            ),
            launch_testing.actions.ReadyToTest(),
        ]
    )


class TestRobotLaunch(LaunchTestNodeMixin, unittest.TestCase):
    """A test node in the launched nodes' namespace plays camera, operator and robot."""

    NODE_NAME = "test_robot_launch"
    DOMAIN_ID = DOMAIN_ID
    NAMESPACE = NAMESPACE

    def inbox(self, msg_type: type, topic: str) -> list:
        received: list = []
        self.node.create_subscription(msg_type, topic, received.append, COMMAND_QOS)
        return received

    def test_both_nodes_come_up_with_the_launch_arguments(self, proc_output) -> None:
        proc_output.assertWaitFor(
            f"ready: bundle {model_bundle()}",
            process="policy_node",
            timeout=STARTUP_TIMEOUT_S,
        )
        proc_output.assertWaitFor(f"{float(CONTROL_RATE_HZ):g} Hz", process="policy_node")
        # The policy params file is keyed `policy_node:`; under the namespace it still applies.
        proc_output.assertWaitFor(
            f"[{NAMESPACE}.policy_node]: ready: bundle", process="policy_node"
        )
        proc_output.assertWaitFor("action space rt1_always_arm;", process="policy_node")
        proc_output.assertWaitFor(
            "configured: backend ros_topics", process="driver_node", timeout=STARTUP_TIMEOUT_S
        )
        proc_output.assertWaitFor(f"[{NAMESPACE}.driver_node]: active", process="driver_node")

    def test_instruction_and_frames_drive_servo_cmd_vel_and_gripper(self, proc_output) -> None:
        proc_output.assertWaitFor(
            "ready: bundle", process="policy_node", timeout=STARTUP_TIMEOUT_S
        )
        arm = self.inbox(TwistStamped, "cmd/arm")
        servo = self.inbox(TwistStamped, "servo_node/delta_twist_cmds")
        cmd_vel = self.inbox(TwistStamped, "cmd_vel")
        gripper = self.inbox(Float64MultiArray, "gripper_controller/commands")
        camera = self.node.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
        instruction = self.node.create_publisher(String, "instruction", INSTRUCTION_QOS)
        self.spin_until(
            lambda: camera.get_subscription_count() and instruction.get_subscription_count(),
            STARTUP_TIMEOUT_S,
            "policy subscriptions on camera/image_raw and instruction",
        )
        instruction.publish(String(data="pick coke can"))
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (120, 160, 3), np.uint8) for _ in range(4)]
        sent_stamps: set[int] = set()

        def publish_frame() -> None:
            stamp = self.node.get_clock().now().to_msg()
            sent_stamps.add(Time.from_msg(stamp).nanoseconds)
            camera.publish(rgb_to_image_msg(frames[len(sent_stamps) % 4], stamp, "head_camera"))

        timer = self.node.create_timer(1.0 / CAMERA_RATE_HZ, publish_frame)
        try:
            self.spin_until(
                lambda: any(not twist_is_zero(m) for m in servo) and cmd_vel and gripper,
                COMMAND_TIMEOUT_S,
                "moving twist on servo_node/delta_twist_cmds, cmd_vel and gripper commands",
            )
        finally:
            self.node.destroy_timer(timer)
        # Every command computed from a frame carries that frame's stamp (stops need not).
        moving = [msg for msg in arm if not twist_is_zero(msg)]
        assert moving, "the policy published no moving cmd/arm"
        for msg in moving:
            assert Time.from_msg(msg.header.stamp).nanoseconds in sent_stamps
        # Mode `arm` zeroes the base: the driver holds cmd_vel at zero, stamped in base_link.
        assert all(twist_is_zero(m) for m in cmd_vel)
        assert {m.header.frame_id for m in cmd_vel} == {"base_link"}
        for msg in gripper:
            assert len(msg.data) == 1
            assert math.isfinite(msg.data[0])
            assert -1.0 <= msg.data[0] <= 1.0


@launch_testing.post_shutdown_test()
class TestRobotLaunchShutdown(unittest.TestCase):
    def test_both_nodes_exit_cleanly_on_sigint(self, proc_info, proc_output) -> None:
        names = " ".join(proc_info.process_names())
        assert "policy_node" in names
        assert "driver_node" in names
        launch_testing.asserts.assertExitCodes(proc_info)
        for output in proc_output:
            assert b"Traceback" not in output.text, output.text.decode(errors="replace")

    def test_the_params_files_the_launch_wrote_are_gone(self, proc_info) -> None:
        written = [p for p in launch_params_files(proc_info) if "rt_ros_launch_params_" in str(p)]
        # The namespaced copy of the plain-keyed policy file, each node's launch arguments.
        expected = {
            "policy_node_0.yaml",
            "policy_node_overrides.yaml",
            "driver_node_overrides.yaml",
        }
        assert expected <= {path.name for path in written}, written
        assert not [path for path in written if path.exists()]
        assert not [path.parent for path in written if path.parent.exists()]
