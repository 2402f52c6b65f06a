"""Policy node and driver node together, as real processes over DDS: camera and instruction in,
safe commands out on the robot's topics, and the robot stops when the policy process dies."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("rclpy", reason="needs rclpy (the ros extra or a ROS 2 install)")

from geometry_msgs.msg import TwistStamped
from test_policy_node import PolicyHarness, mode_profile, twist_is_zero

pytestmark = pytest.mark.ros

CONTROL_RATE_HZ = 5.0
CAMERA_RATE_HZ = 20.0
COMMAND_TIMEOUT_S = 0.5  # config/driver.yaml
MAX_LINEAR_MPS = 0.25  # config/driver.yaml, per axis


@pytest.fixture
def pipeline(start_node, ros_node, tiny_bundle, tmp_path):
    """Driver on ros_topics + policy steered to arm mode, with the test as camera and robot."""
    driver = start_node("driver_node", params_file="driver.yaml")
    policy = start_node(
        "policy_node",
        params_file="policy.yaml",
        overrides={
            "model_path": str(tiny_bundle),
            "control_rate_hz": CONTROL_RATE_HZ,
            "action_space": str(mode_profile(tmp_path, "arm")),
        },
    )
    harness = PolicyHarness(ros_node)
    servo = ros_node.subscribe(TwistStamped, "servo_node/delta_twist_cmds")
    policy.wait_for_output(r"ready: bundle", timeout_s=60.0)
    driver.wait_for_output(r"active", timeout_s=30.0)
    harness.wait_connected()
    ros_node.wait_for_publishers(servo)
    return driver, policy, harness, servo


def test_policy_commands_reach_the_robot_within_limits(pipeline):
    driver, policy, harness, servo = pipeline
    harness.say("pick coke can")
    with harness.ros.repeat(harness.camera, harness.frame_msg, CAMERA_RATE_HZ):
        moving = servo.wait_for(lambda m: not twist_is_zero(m), timeout_s=15.0).msg
    linear = (moving.twist.linear.x, moving.twist.linear.y, moving.twist.linear.z)
    assert all(abs(v) <= MAX_LINEAR_MPS + 1e-9 for v in linear)
    assert driver.returncode is None
    assert policy.returncode is None


def test_killing_the_policy_stops_the_robot_within_the_command_timeout(pipeline):
    driver, policy, harness, servo = pipeline
    harness.say("pick coke can")
    with harness.ros.repeat(harness.camera, harness.frame_msg, CAMERA_RATE_HZ):
        servo.wait_for(lambda m: not twist_is_zero(m), timeout_s=15.0)
        policy.kill()  # SIGKILL: no goodbye message
        killed_s = time.monotonic()
        last_command_s = harness.arm.received()[-1].time_s
        mark = len(servo)
        stop = servo.wait_for(twist_is_zero, timeout_s=5.0, start=mark)
    assert stop.time_s - last_command_s <= COMMAND_TIMEOUT_S + 0.1
    assert stop.time_s >= killed_s
    assert driver.returncode is None
