"""Launch test of launch/sim.launch.py: the policy node and the driver node on the embedded MuJoCo
`sim` backend, from the installed launch file, with an exported rt1-tiny bundle. An instruction
and camera frames go in; policy commands on cmd/arm and the driver's commanded arm twist
(driver/commanded/arm) come out; both nodes exit 0 when the launch is shut down.

Needs a ROS 2 install with launch_testing and launch_ros, and rt_ros built
into it: `colcon test --packages-select rt_ros`, or `launch_test test/launch/test_sim_launch.py`.
The bundle: the folder in RT_ROS_TEST_BUNDLE, else one exported here (needs torch, ~30 s).
"""

from __future__ import annotations

import os
import sys
import unittest
from pathlib import Path

import numpy as np
import pytest

REASON = (
    "launch tests need a ROS 2 install with launch_testing and launch_ros "
    "(colcon test, or launch_test test/launch/test_sim_launch.py)"
)
pytest.importorskip("launch_testing", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)

import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description import LaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from rt_ros.nodes.image_conversion import rgb_to_image_msg  # noqa: E402
from rt_ros.nodes.qos import COMMAND_QOS, INSTRUCTION_QOS, SENSOR_QOS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # launch_test loads files by path
from launch_test_support import (  # noqa: E402
    BUNDLE_REASON,
    STARTUP_TIMEOUT_S,
    LaunchTestNodeMixin,
    always_arm_params_file,
    model_bundle,
    share_dir,
    twist_is_zero,
)

# This file's own ROS domain (215-229; test_robot_launch.py uses 200-214), loopback only.
DOMAIN_ID = 215 + os.getpid() % 15
CONTROL_RATE_HZ = 10.0
CAMERA_RATE_HZ = 15.0
COMMAND_TIMEOUT_S = 30.0


@pytest.mark.skipif(BUNDLE_REASON is not None, reason=str(BUNDLE_REASON))
@pytest.mark.rostest
def generate_test_description() -> LaunchDescription:
    if BUNDLE_REASON is not None:
        raise unittest.SkipTest(BUNDLE_REASON)
    os.environ.update(ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    launch_file = share_dir() / "launch" / "sim.launch.py"
    arguments = {
        "model_path": str(model_bundle()),
        "policy_params_file": str(always_arm_params_file()),
        "control_rate_hz": str(CONTROL_RATE_HZ),
        "providers": "cpu",
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


class TestSimLaunch(LaunchTestNodeMixin, unittest.TestCase):
    """A test node plays camera and operator; the sim backend plays the robot."""

    NODE_NAME = "test_sim_launch"
    DOMAIN_ID = DOMAIN_ID

    def test_both_nodes_come_up_on_the_sim_backend(self, proc_output) -> None:
        proc_output.assertWaitFor(
            "configured: backend sim", process="driver_node", timeout=STARTUP_TIMEOUT_S
        )
        proc_output.assertWaitFor("active: commands on", process="driver_node")
        proc_output.assertWaitFor(
            "action space rt1_always_arm;", process="policy_node", timeout=STARTUP_TIMEOUT_S
        )

    def test_instruction_and_frames_move_the_simulated_arm(self, proc_output) -> None:
        proc_output.assertWaitFor(
            "ready: bundle", process="policy_node", timeout=STARTUP_TIMEOUT_S
        )
        proc_output.assertWaitFor(
            "active: commands on", process="driver_node", timeout=STARTUP_TIMEOUT_S
        )
        arm: list[TwistStamped] = []
        commanded: list[TwistStamped] = []
        self.node.create_subscription(TwistStamped, "cmd/arm", arm.append, COMMAND_QOS)
        self.node.create_subscription(
            TwistStamped, "driver/commanded/arm", commanded.append, COMMAND_QOS
        )
        camera = self.node.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
        instruction = self.node.create_publisher(String, "instruction", INSTRUCTION_QOS)
        self.spin_until(
            lambda: camera.get_subscription_count() and instruction.get_subscription_count(),
            STARTUP_TIMEOUT_S,
            "policy subscriptions on camera/image_raw and instruction",
        )
        instruction.publish(String(data="open top drawer"))
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (120, 160, 3), np.uint8) for _ in range(4)]
        count = [0]

        def publish_frame() -> None:
            count[0] += 1
            stamp = self.node.get_clock().now().to_msg()
            camera.publish(rgb_to_image_msg(frames[count[0] % 4], stamp, "head_camera"))

        timer = self.node.create_timer(1.0 / CAMERA_RATE_HZ, publish_frame)
        try:
            self.spin_until(
                lambda: any(not twist_is_zero(m) for m in commanded),
                COMMAND_TIMEOUT_S,
                "moving arm twist on driver/commanded/arm",
            )
        finally:
            self.node.destroy_timer(timer)
        assert arm, "the policy published no cmd/arm"


@launch_testing.post_shutdown_test()
class TestSimLaunchShutdown(unittest.TestCase):
    def test_both_nodes_exit_cleanly_on_sigint(self, proc_info) -> None:
        names = " ".join(proc_info.process_names())
        assert "policy_node" in names
        assert "driver_node" in names
        launch_testing.asserts.assertExitCodes(proc_info)
