"""The ros_topics backend turning arm twists into joint velocities itself (arm_interface
joint_velocity), as a real driver_node process over real DDS (loopback).

The test plays the policy (cmd/arm) and the robot (/joint_states in, the arm velocity
controller's Float64MultiArray out) and checks the joint velocities against the URDF kinematics.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not importable (install the ros extra)")
pytest.importorskip("pinocchio", reason="the joint interfaces need pinocchio (`pin` on PyPI)")

from conftest import claim_domain_id
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray

from rt_ros.nodes.arm_kinematics import ArmKinematics
from rt_ros.sim import robot_description as rd

pytestmark = pytest.mark.ros

ARM_TOPIC = "arm_velocity_controller/commands"
OVERRIDES = {"ros_topics.arm_interface": "joint_velocity", "diagnostics_rate_hz": 10.0}
HOME_Q = (0.084, -0.127, 0.108, 2.004, 0.014, 1.264, 0.187)
TWIST = (0.05, 0.0, -0.02, 0.0, 0.0, 0.2)  # inside driver.yaml's speed limits
DT_S = 1.0 / 50.0  # driver.yaml update_rate_hz
COMMAND_TIMEOUT_S = 0.5  # driver.yaml
# The driver's qdot equals this process's pinocchio solution for the same state to this.
QDOT_TOLERANCE = 1e-9


@pytest.fixture(scope="session")
def ros_domain_id():
    """A domain of its own (61-70), apart from the other node tests (1-60; see conftest.py)."""
    yield from claim_domain_id(range(61, 71))


def joint_state(ros, positions) -> JointState:
    msg = JointState()
    msg.header.stamp = ros.stamp()
    msg.name = list(rd.ARM_JOINTS)
    msg.position = [float(v) for v in positions]
    return msg


def arm_twist(ros, values) -> TwistStamped:
    msg = TwistStamped()
    msg.header.stamp = ros.stamp()
    t = msg.twist
    t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z = values
    return msg


def diagnostics(msg: DiagnosticArray) -> dict[str, str] | None:
    for status in msg.status:
        if status.name.startswith("driver_node"):
            return {kv.key: kv.value for kv in status.values}
    return None


@pytest.fixture
def driver(start_node):
    process = start_node("driver_node", params_file="driver.yaml", overrides=OVERRIDES)
    process.wait_for_output(r"\] \[driver_node\]: active", timeout_s=20.0)
    yield process
    assert process.stop() == 0, process.output


def test_twist_becomes_joint_velocities_and_stops_after_the_timeout(driver, ros_node):
    from rt_ros.nodes.qos import SENSOR_QOS

    ros = ros_node
    states = ros.publisher(JointState, "/joint_states", SENSOR_QOS)
    arm = ros.publisher(TwistStamped, "cmd/arm")
    commands = ros.subscribe(Float64MultiArray, ARM_TOPIC)
    status = ros.subscribe(DiagnosticArray, "/diagnostics")
    ros.wait_for_subscribers(states)
    ros.wait_for_subscribers(arm)
    ros.wait_for_publishers(commands)
    kinematics = ArmKinematics(rd.robot_urdf(), rd.ARM_JOINTS, rd.BASE_LINK, "end_effector")
    expected = kinematics.twist_to_joint_velocities(HOME_Q, TWIST, DT_S)
    with ros.repeat(states, lambda: joint_state(ros, HOME_Q), 50.0):
        with ros.repeat(arm, lambda: arm_twist(ros, TWIST), 20.0):
            # The driver ramps up (acceleration limits), then sends the full twist's qdot.
            top = commands.wait_for(
                lambda m: np.allclose(m.data, expected, atol=QDOT_TOLERANCE), timeout_s=5.0
            )
        mark = len(commands)
        stop = commands.wait_for(
            lambda m: not any(m.data), timeout_s=COMMAND_TIMEOUT_S + 1.0, start=mark
        )
        values = status.wait_for(
            lambda m: (v := diagnostics(m)) is not None and v["arm_interface"] == "joint_velocity"
        )
    assert len(top.msg.data) == len(rd.ARM_JOINTS)
    # Sign and magnitude: the joint velocities move the end effector along the twist.
    np.testing.assert_allclose(kinematics.jacobian(HOME_Q) @ top.msg.data, TWIST, atol=1e-9)
    # The stop came once the last command expired, not earlier.
    last_command_s = max(r.time_s for r in commands.received()[:mark])
    assert stop.time_s - last_command_s < COMMAND_TIMEOUT_S + 0.5
    assert diagnostics(values.msg)["held_without_joint_state"] == "0"


def test_no_joint_state_means_no_motion(driver, ros_node):
    ros = ros_node
    arm = ros.publisher(TwistStamped, "cmd/arm")
    commands = ros.subscribe(Float64MultiArray, ARM_TOPIC)
    status = ros.subscribe(DiagnosticArray, "/diagnostics")
    ros.wait_for_subscribers(arm)
    ros.wait_for_publishers(commands)
    with ros.repeat(arm, lambda: arm_twist(ros, TWIST), 20.0):
        found = status.wait_for(
            lambda m: (v := diagnostics(m)) is not None and int(v["held_without_joint_state"]) > 0
        )
        commands.wait_for(lambda m: len(m.data) == len(rd.ARM_JOINTS))
    assert "no joint state" in diagnostics(found.msg)["hold_reason"]
    assert all(not any(r.msg.data) for r in commands.received())
    driver.wait_for_output(r"arm command held: no joint state")


def test_gazebo_parameters_drive_position_base_and_gripper_controllers(start_node, ros_node):
    """config/gazebo.yaml (holonomic base and finger positions) with arm_interface
    joint_position: positions integrate the joint velocities from the measured posture, the
    base twist is turned into odom axes by the measured yaw, closedness becomes finger
    positions."""
    from rt_ros.nodes.qos import SENSOR_QOS

    gazebo_params = str(Path(__file__).resolve().parents[2] / "config" / "gazebo.yaml")
    driver = start_node(
        "driver_node",
        params_file="driver.yaml",
        overrides={"ros_topics.arm_interface": "joint_position"},
        ros_args=["--params-file", gazebo_params],
    )
    driver.wait_for_output(r"\] \[driver_node\]: active", timeout_s=20.0)
    ros = ros_node
    states = ros.publisher(JointState, "/joint_states", SENSOR_QOS)
    arm = ros.publisher(TwistStamped, "cmd/arm")
    base = ros.publisher(TwistStamped, "cmd/base")
    gripper = ros.publisher(Float64, "cmd/gripper")
    positions = ros.subscribe(Float64MultiArray, "arm_position_controller/commands")
    base_out = ros.subscribe(Float64MultiArray, "base_velocity_controller/commands")
    fingers = ros.subscribe(Float64MultiArray, "gripper_controller/commands")
    for publisher in (states, arm, base, gripper):
        ros.wait_for_subscribers(publisher)
    for inbox in (positions, base_out, fingers):
        ros.wait_for_publishers(inbox)
    yaw = np.pi / 2

    def robot_state() -> JointState:
        msg = joint_state(ros, HOME_Q)
        msg.name += list(rd.BASE_JOINTS)
        msg.position = [*msg.position, 1.0, 2.0, yaw]
        return msg

    kinematics = ArmKinematics(rd.robot_urdf(), rd.ARM_JOINTS, rd.BASE_LINK, "end_effector")
    direction = kinematics.twist_to_joint_velocities(HOME_Q, TWIST, DT_S)
    with (
        ros.repeat(states, robot_state, 50.0),
        ros.repeat(arm, lambda: arm_twist(ros, TWIST), 20.0),
        ros.repeat(base, lambda: arm_twist(ros, (0.2, 0.0, 0.0, 0.0, 0.0, 0.0)), 20.0),
    ):
        gripper.publish(Float64(data=1.0))
        # The integrated positions leave HOME_Q along qdot (the posture is measured, held still).
        moved = positions.wait_for(
            lambda m: (np.asarray(m.data) - HOME_Q) @ direction > 5 * DT_S * direction @ direction
        )
        turned = base_out.wait_for(lambda m: m.data[1] >= 0.2 - 1e-9)
        closed = fingers.wait_for(lambda m: len(m.data) == 2)
    step = np.asarray(moved.msg.data) - HOME_Q
    cosine = step @ direction / (np.linalg.norm(step) * np.linalg.norm(direction))
    assert cosine > 0.999
    # Forward in base_link at yaw pi/2 is +y in odom.
    np.testing.assert_allclose(turned.msg.data, [0.0, 0.2, 0.0], atol=1e-9)
    assert list(closed.msg.data) == [0.0, 0.0]  # closedness 1: fingers closed
    assert driver.stop() == 0, driver.output


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ros_topics.arm_interface": "joint_torque"}, "ros_topics.arm_interface must be one of"),
        (
            {
                "ros_topics.arm_interface": "joint_velocity",
                "ros_topics.robot_description_file": "/nonexistent/robot.urdf",
            },
            "ros_topics.robot_description_file '/nonexistent/robot.urdf' does not exist",
        ),
    ],
)
def test_bad_joint_interface_parameters_are_named(start_node, overrides, message):
    driver = start_node("driver_node", params_file="driver.yaml", overrides=overrides)
    assert driver.wait() == 1
    assert message in driver.output


def test_backend_imports_neither_mujoco_nor_pinocchio():
    """A robot on servo_twist needs neither; pinocchio loads only for a joint interface."""
    code = (
        "import sys, rt_ros.nodes.backends.ros_topics_backend; "
        "print(sorted({'mujoco', 'pinocchio', 'torch'} & sys.modules.keys()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
