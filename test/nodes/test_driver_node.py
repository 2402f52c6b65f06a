"""The driver node as a real process over real DDS (loopback), with the ros_topics backend.

The test plays both the policy (publishing cmd/*, estop) and the robot (listening on the Servo,
cmd_vel and gripper controller topics), with config/driver.yaml as shipped.
"""

from __future__ import annotations

import itertools
import math
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("rclpy", reason="rclpy is not importable (install the ros extra)")

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from std_msgs.msg import Bool, Float64, Float64MultiArray, String

from rt_ros.nodes.stamps import stamp_seconds

pytestmark = pytest.mark.ros

COMMAND_TIMEOUT_S = 0.5  # config/driver.yaml
STOP_MARGIN_S = 0.1
POLICY_RATE_HZ = 20.0
# The YAML's limits the clamping test checks against.
MAX_LINEAR_MPS = 0.25
MAX_ANGULAR_RPS = 1.0
MAX_BASE_LINEAR_MPS = 0.5
MAX_BASE_ANGULAR_RPS = 1.0
# Diagnostics faster than the shipped 1 Hz, so counter checks wait less.
OVERRIDES = {"diagnostics_rate_hz": 10.0}
# A quiet period long enough to show that nothing moves.
QUIET_S = 0.4

# A stand-in policy process: publishes an arm command with fresh stamps until killed.
FAKE_POLICY = """
import sys
import rclpy
from geometry_msgs.msg import TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rt_ros.nodes.qos import COMMAND_QOS

rclpy.init()
node = rclpy.create_node("fake_policy")
publisher = node.create_publisher(TwistStamped, "cmd/arm", COMMAND_QOS)

def tick():
    msg = TwistStamped()
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.twist.linear.x = float(sys.argv[1])
    publisher.publish(msg)

node.create_timer(1.0 / float(sys.argv[2]), tick)
print("fake policy publishing", flush=True)
rclpy.spin(node)
"""


def twist(msg: TwistStamped) -> tuple[float, ...]:
    t = msg.twist
    return (t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z)


def is_zero(msg: TwistStamped) -> bool:
    return not any(twist(msg))


def diagnostic_values(msg: DiagnosticArray) -> dict[str, str] | None:
    for status in msg.status:
        if status.name.startswith("driver_node"):
            return {kv.key: kv.value for kv in status.values}
    return None


@dataclass
class Rig:
    """The driver process and both ends of its topics."""

    driver: Any
    ros: Any
    arm: Any
    base: Any
    gripper: Any
    mode: Any
    estop: Any
    release: Any
    servo: Any
    cmd_vel: Any
    gripper_out: Any
    commanded_arm: Any
    diagnostics: Any

    def arm_msg(self, linear=(0.0, 0.0, 0.0), angular=(0.0, 0.0, 0.0), age_s=0.0) -> TwistStamped:
        msg = TwistStamped()
        msg.header.stamp = self.ros.stamp(-age_s)
        msg.header.frame_id = "base_link"
        t = msg.twist
        t.linear.x, t.linear.y, t.linear.z = (float(v) for v in linear)
        t.angular.x, t.angular.y, t.angular.z = (float(v) for v in angular)
        return msg

    def moving(self, linear_x: float = 0.1):
        """Publish an arm command at the policy rate while the block runs."""
        return self.ros.repeat(self.arm, lambda: self.arm_msg((linear_x, 0, 0)), POLICY_RATE_HZ)

    def wait_moving(self, start: int = 0, timeout_s: float = 5.0):
        return self.servo.wait_for(lambda m: not is_zero(m), timeout_s, start)

    def assert_no_motion(self, start: int, quiet_s: float = QUIET_S) -> None:
        time.sleep(quiet_s)  # a fixed window on purpose: showing that nothing arrives
        moving = [r for r in self.servo.received(start) if not is_zero(r.msg)]
        assert not moving, f"servo got motion: {twist(moving[0].msg)}"

    def wait_diagnostics(self, predicate, timeout_s: float = 5.0) -> dict[str, str]:
        start = len(self.diagnostics)
        found = self.diagnostics.wait_for(
            lambda m: (v := diagnostic_values(m)) is not None and predicate(v), timeout_s, start
        )
        return diagnostic_values(found.msg)


def make_rig(start_node, ros, overrides: dict[str, Any]) -> Rig:
    """Start the driver process and create both ends of its topics (not yet matched)."""
    return Rig(
        driver=start_node("driver_node", params_file="driver.yaml", overrides=overrides),
        ros=ros,
        arm=ros.publisher(TwistStamped, "cmd/arm"),
        base=ros.publisher(TwistStamped, "cmd/base"),
        gripper=ros.publisher(Float64, "cmd/gripper"),
        mode=ros.publisher(String, "cmd/mode"),
        estop=ros.publisher(Bool, "estop"),
        release=ros.publisher(Bool, "estop/release"),
        servo=ros.subscribe(TwistStamped, "servo_node/delta_twist_cmds"),
        cmd_vel=ros.subscribe(TwistStamped, "cmd_vel"),
        gripper_out=ros.subscribe(Float64MultiArray, "gripper_controller/commands"),
        commanded_arm=ros.subscribe(TwistStamped, "driver/commanded/arm"),
        diagnostics=ros.subscribe(DiagnosticArray, "/diagnostics"),
    )


def wait_connected(rig: Rig) -> None:
    """Until every topic matched both ways (the driver creates them in on_configure)."""
    for publisher in (rig.arm, rig.base, rig.gripper, rig.mode, rig.estop, rig.release):
        rig.ros.wait_for_subscribers(publisher)
    for inbox in (rig.servo, rig.cmd_vel, rig.gripper_out, rig.commanded_arm, rig.diagnostics):
        rig.ros.wait_for_publishers(inbox)


def stop_driver(rig: Rig) -> None:
    """SIGINT while the driver's subscribers still exist, so its final stop is acknowledged."""
    if rig.driver.returncode is None:
        assert rig.driver.stop(signal.SIGINT) == 0, rig.driver.output


@pytest.fixture
def rig(start_node, ros_node) -> Iterator[Rig]:
    """The driver as shipped (autostart), active and connected."""
    rig = make_rig(start_node, ros_node, OVERRIDES)
    rig.driver.wait_for_output(r"\] \[driver_node\]: active", timeout_s=15.0)
    wait_connected(rig)
    yield rig
    stop_driver(rig)


def test_commands_are_forwarded_after_clamping(rig: Rig):
    with (
        rig.ros.repeat(rig.arm, lambda: rig.arm_msg((1.0, 0.0, -0.1), (0.0, 0.0, 3.0)), 20.0),
        rig.ros.repeat(rig.base, lambda: rig.arm_msg((2.0, 0.3, 0.0), (0.0, 0.0, -5.0)), 20.0),
    ):
        rig.gripper.publish(Float64(data=1.7))
        top = rig.servo.wait_for(lambda m: twist(m)[0] >= MAX_LINEAR_MPS - 1e-9)
        rig.cmd_vel.wait_for(lambda m: twist(m)[0] >= MAX_BASE_LINEAR_MPS - 1e-9)
        rig.gripper_out.wait_for(lambda m: list(m.data) == [1.0])
        rig.servo.wait_for(lambda m: twist(m)[5] >= MAX_ANGULAR_RPS - 1e-9)
    assert top.msg.header.frame_id == "base_link"
    for received in rig.servo.received():
        x, y, z, _, _, wz = twist(received.msg)
        assert abs(x) <= MAX_LINEAR_MPS + 1e-9
        assert y == 0.0
        assert -0.1 <= z <= 0.0
        assert abs(wz) <= MAX_ANGULAR_RPS + 1e-9
    for received in rig.cmd_vel.received():
        x, y, _, _, _, wz = twist(received.msg)
        assert abs(x) <= MAX_BASE_LINEAR_MPS + 1e-9
        assert y == 0.0  # the YAML forbids sideways base motion
        assert abs(wz) <= MAX_BASE_ANGULAR_RPS + 1e-9
    # driver/commanded/arm mirrors what went to Servo.
    rig.commanded_arm.wait_for(lambda m: twist(m)[0] >= MAX_LINEAR_MPS - 1e-9)
    values = rig.wait_diagnostics(lambda v: int(v["clamped"]) >= 3)
    assert values["backend"] == "ros_topics"
    assert values["sent_gripper"] == "1.0000"


def test_killed_policy_process_stops_motion_within_the_command_timeout(rig: Rig, start_process):
    seen_commands = rig.ros.subscribe(TwistStamped, "cmd/arm")
    policy = start_process(
        [sys.executable, "-c", FAKE_POLICY, "0.1", str(POLICY_RATE_HZ)], name="fake_policy"
    )
    policy.wait_for_output("fake policy publishing", timeout_s=15.0)
    rig.servo.wait_for(lambda m: twist(m)[0] == pytest.approx(0.1), timeout_s=10.0)
    seen_commands.wait_for(lambda m: True, timeout_s=10.0)  # the test hears the policy too

    policy.kill()
    first_after = len(rig.servo.received())
    stop = rig.servo.wait_for(is_zero, timeout_s=COMMAND_TIMEOUT_S + 1.0, start=first_after)

    # The driver stamps what it sends with its clock, so the stamps say when it decided to stop,
    # whenever this process got to read it: at its first update tick (50 Hz) after the newest
    # command expired. A starved machine delays the driver's ticks (CI has seen a stop arrive
    # 1.25 s late here), so the bound allows the longest gap between the ticks it sent.
    newest_command_s = max(stamp_seconds(r.msg.header.stamp) for r in seen_commands.received())
    # While a command is held the driver sends every tick; from the last half second of driving.
    sent_s = [
        stamp
        for r in rig.servo.received()
        if r.time_s <= stop.time_s
        and (stamp := stamp_seconds(r.msg.header.stamp)) >= newest_command_s - 0.5
    ]
    longest_tick_gap_s = max(b - a for a, b in itertools.pairwise(sent_s))
    latency_s = stamp_seconds(stop.msg.header.stamp) - newest_command_s
    print(
        f"stop decided {latency_s * 1000:.1f} ms after the newest command "
        f"(longest driver tick gap {longest_tick_gap_s * 1000:.1f} ms)"
    )
    assert latency_s >= COMMAND_TIMEOUT_S - 1e-3, "stopped before the newest command expired"
    assert latency_s <= COMMAND_TIMEOUT_S + longest_tick_gap_s + STOP_MARGIN_S
    rig.assert_no_motion(len(rig.servo.received()))
    values = rig.wait_diagnostics(lambda v: v["state"] == "timed_out")
    assert int(values["timeouts"]) >= 1
    assert rig.driver.returncode is None

    # A policy that comes back drives the robot again.
    mark = len(rig.servo)
    start_process([sys.executable, "-c", FAKE_POLICY, "0.1", str(POLICY_RATE_HZ)], name="again")
    rig.servo.wait_for(lambda m: twist(m)[0] == pytest.approx(0.1), timeout_s=15.0, start=mark)


def test_estop_latches_until_released(rig: Rig):
    with rig.moving():
        rig.wait_moving()
        mark = len(rig.servo)
        rig.estop.publish(Bool(data=True))
        rig.servo.wait_for(is_zero, timeout_s=1.0, start=mark)
        rig.assert_no_motion(len(rig.servo))

        # A release while the e-stop is still asserted is refused.
        rig.release.publish(Bool(data=True))
        rig.driver.wait_for_output("release refused")
        rig.assert_no_motion(len(rig.servo))

        # False on estop ends the assertion but does not release the latch.
        rig.estop.publish(Bool(data=False))
        rig.driver.wait_for_output("no longer asserted")
        rig.assert_no_motion(len(rig.servo))
        values = rig.wait_diagnostics(lambda v: v["state"] == "estopped")
        assert int(values["rejected_during_estop"]) > 0
        assert values["estop_latched"] == "true"

        mark = len(rig.servo)
        rig.release.publish(Bool(data=True))
        rig.wait_moving(start=mark, timeout_s=2.0)
    rig.wait_diagnostics(lambda v: v["estop_latched"] == "false")


def test_stale_and_non_finite_commands_are_rejected_and_counted(rig: Rig):
    mark = len(rig.servo)
    rig.arm.publish(rig.arm_msg((0.1, 0.0, 0.0), age_s=2.0))  # stale
    rig.arm.publish(rig.arm_msg((0.1, 0.0, 0.0), age_s=-5.0))  # from the future
    rig.arm.publish(rig.arm_msg((0.1, math.nan, 0.0)))
    rig.base.publish(rig.arm_msg((math.inf, 0.0, 0.0)))
    rig.gripper.publish(Float64(data=math.nan))
    rig.mode.publish(String(data="fly"))
    values = rig.wait_diagnostics(
        lambda v: (
            int(v["rejected_stale"]) >= 1
            and int(v["rejected_future_stamp"]) >= 1
            and int(v["rejected_non_finite"]) >= 3
            and int(v["rejected_invalid_mode"]) >= 1
        )
    )
    assert values["accepted"] == "0"
    rig.assert_no_motion(mark)
    assert not rig.gripper_out.received()
    # The node keeps running and still drives the robot.
    assert rig.driver.returncode is None
    with rig.moving():
        rig.wait_moving(start=mark)


def test_huge_gripper_command_is_clamped_and_counted(rig: Rig):
    """1e308 is finite: clamped to the gripper's range and counted, not passed on, and the
    driver keeps going."""
    clamped_before = int(rig.wait_diagnostics(lambda v: True)["clamped"])
    rig.gripper.publish(Float64(data=1e308))
    rig.gripper_out.wait_for(lambda m: list(m.data) == [1.0])
    values = rig.wait_diagnostics(lambda v: int(v["clamped"]) > clamped_before)
    assert values["sent_gripper"] == "1.0000"
    mark = len(rig.gripper_out)
    rig.gripper.publish(Float64(data=-0.5))
    rig.gripper_out.wait_for(lambda m: list(m.data) == [-0.5], start=mark)
    with rig.moving():
        rig.wait_moving()
    assert rig.driver.returncode is None


def test_negative_stamp_is_rejected_and_the_driver_lives(rig: Rig):
    msg = rig.arm_msg((0.1, 0.0, 0.0))
    msg.header.stamp.sec = -5
    rig.arm.publish(msg)
    values = rig.wait_diagnostics(lambda v: int(v["rejected_stale"]) >= 1)
    assert values["accepted"] == "0"
    assert rig.driver.returncode is None


def test_terminate_mode_stops_motion_until_a_new_mode(rig: Rig):
    with rig.moving():
        rig.wait_moving()
        mark = len(rig.servo)
        rig.mode.publish(String(data="terminate"))
        rig.servo.wait_for(is_zero, timeout_s=1.0, start=mark)
        rig.assert_no_motion(len(rig.servo))
        values = rig.wait_diagnostics(lambda v: v["state"] == "terminated")
        assert int(values["rejected_terminated"]) > 0
        mark = len(rig.servo)
        rig.mode.publish(String(data="arm"))
        rig.wait_moving(start=mark, timeout_s=2.0)


def test_sigterm_stops_the_robot_before_exit(rig: Rig):
    with rig.moving():
        rig.wait_moving()
        mark = len(rig.servo)
        rig.driver.send_signal(signal.SIGTERM)
        rig.servo.wait_for(is_zero, timeout_s=2.0, start=mark)
    assert rig.driver.wait() == 0


def test_lifecycle_transitions_gate_motion(start_node, ros_node):
    rig = make_rig(start_node, ros_node, {**OVERRIDES, "autostart": False})
    client = ros_node.node.create_client(ChangeState, "driver_node/change_state")

    def transition(transition_id: int) -> None:
        request = ChangeState.Request()
        request.transition.id = transition_id
        future = client.call_async(request)
        ros_node.wait_until(future.done, 5.0, f"lifecycle transition {transition_id}")
        assert future.result().success, rig.driver.output

    try:
        ros_node.wait_until(client.service_is_ready, 15.0, "the driver's change_state service")
        transition(Transition.TRANSITION_CONFIGURE)
        wait_connected(rig)
        with rig.moving():
            rig.assert_no_motion(0)  # configured but inactive: nothing moves
            values = rig.wait_diagnostics(lambda v: int(v["rejected_inactive"]) > 0)
            assert values["state"] == "inactive"
            transition(Transition.TRANSITION_ACTIVATE)
            rig.wait_moving()
            mark = len(rig.servo)
            transition(Transition.TRANSITION_DEACTIVATE)
            rig.servo.wait_for(is_zero, timeout_s=1.0, start=mark)
            rig.assert_no_motion(len(rig.servo))
        transition(Transition.TRANSITION_CLEANUP)
    finally:
        stop_driver(rig)


def test_unknown_backend_is_refused_with_a_clear_message(start_node):
    driver = start_node("driver_node", params_file="driver.yaml", overrides={"backend": "gazebo"})
    assert driver.wait() == 1
    assert "backend must be one of ['ros_topics', 'sim'], got 'gazebo'" in driver.output


def test_bad_parameter_is_named_and_the_node_exits(start_node):
    overrides = {"update_rate_hz": 50, "workspace_min_m": [1.0, 0.0, 0.0]}
    driver = start_node("driver_node", params_file="driver.yaml", overrides=overrides)
    assert driver.wait() == 1
    assert "parameter update_rate_hz" in driver.output
