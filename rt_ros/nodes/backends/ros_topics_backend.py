"""The `ros_topics` backend: a real robot driven through standard ROS 2 controller topics.

Arm (`arm_interface`): `servo_twist` sends the TwistStamped to MoveIt Servo
(`servo_node/delta_twist_cmds`); `joint_velocity` / `joint_position` turn it into joint velocities
here, from the URDF with pinocchio (rt_ros.nodes.arm_kinematics), and send them (or their
integral) as a ros2_control forward controller's Float64MultiArray. Base (`base_interface`):
`cmd_vel`, TwistStamped by default as Jazzy's diff_drive_controller expects, or plain Twist;
`joint_velocity` drives a holonomic base's x / y / yaw joints (odom axes) through a forward
controller. Gripper: a forward_command_controller's Float64MultiArray. State:
sensor_msgs/JointState, and optionally the end-effector pose (PoseStamped in the arm base frame)
so the workspace box can be enforced; in the joint modes forward kinematics give that pose.
Without fresh joint states the joint modes do not move (zero velocities, or hold).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.duration import Duration
from rclpy.exceptions import NameValidationException
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.subscription import Subscription
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from rt_ros.nodes.backends.robot_backend import RobotBackend, RobotState
from rt_ros.nodes.commands import ArmCommand, BaseCommand, TwistCommand
from rt_ros.nodes.qos import COMMAND_QOS, SENSOR_QOS
from rt_ros.runtime.errors import ConfigError
from rt_ros.sim import robot_description as rd

if TYPE_CHECKING:
    from rt_ros.nodes.arm_kinematics import ArmKinematics

PREFIX = "ros_topics."
# How long disconnect waits for subscribers to acknowledge the final stop.
ACK_TIMEOUT_S = 0.2
# Repeated warnings are logged at most this often.
LOG_THROTTLE_S = 1.0
ARM_INTERFACES = ("servo_twist", "joint_velocity", "joint_position")
BASE_INTERFACES = ("cmd_vel", "joint_velocity")
# The arm command topic an empty arm_joint_command_topic stands for, per interface.
DEFAULT_ARM_JOINT_TOPICS = {
    "joint_velocity": "arm_velocity_controller/commands",
    "joint_position": "arm_position_controller/commands",
}


@dataclass(frozen=True)
class RosTopicsConfig:
    """Topic names and frames; parameters `ros_topics.<field>` on the driver node."""

    arm_topic: str = "servo_node/delta_twist_cmds"
    arm_frame_id: str = "base_link"
    base_topic: str = "cmd_vel"
    base_stamped: bool = True
    base_frame_id: str = "base_link"
    gripper_topic: str = "gripper_controller/commands"
    joint_states_topic: str = "/joint_states"
    ee_pose_topic: str = ""
    # --- joint-level arm and base control (kinematics from the URDF) ---
    arm_interface: str = "servo_twist"
    arm_joint_command_topic: str = ""
    arm_joints: tuple[str, ...] = rd.ARM_JOINTS
    ee_frame_id: str = rd.END_EFFECTOR_FRAME
    robot_description_file: str = ""
    joint_state_timeout_s: float = 0.5
    max_damping: float = 0.05
    posture_gain_per_s: float = 0.0
    position_lead_limit: float = 0.1
    base_interface: str = "cmd_vel"
    base_joint_command_topic: str = "base_velocity_controller/commands"
    base_joints: tuple[str, ...] = rd.BASE_JOINTS
    # Gripper as joint positions: 0 joints sends the closedness command itself.
    gripper_joint_count: int = 0
    gripper_open_position: float = 0.0
    gripper_closed_position: float = 0.0

    def __post_init__(self) -> None:
        optional = {"ee_pose_topic", "arm_joint_command_topic", "robot_description_file"}
        for field in fields(self):
            value = getattr(self, field.name)
            name = PREFIX + field.name
            if isinstance(field.default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{name} must be true or false, got {value!r}")
            elif isinstance(field.default, int):
                if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                    raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
            elif isinstance(field.default, float):
                if not (isinstance(value, float) and math.isfinite(value) and value >= 0.0):
                    raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
            elif isinstance(field.default, tuple):
                if not value or not all(isinstance(v, str) and v for v in value):
                    raise ConfigError(f"{name} must be a list of joint names, got {value!r}")
            elif not isinstance(value, str) or (not value and field.name not in optional):
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
        if self.arm_interface not in ARM_INTERFACES:
            raise ConfigError(
                f"{PREFIX}arm_interface must be one of {list(ARM_INTERFACES)}, "
                f"got {self.arm_interface!r}"
            )
        if self.base_interface not in BASE_INTERFACES:
            raise ConfigError(
                f"{PREFIX}base_interface must be one of {list(BASE_INTERFACES)}, "
                f"got {self.base_interface!r}"
            )
        if len(self.base_joints) != 3:
            raise ConfigError(
                f"{PREFIX}base_joints must name the x, y and yaw joints, got {self.base_joints!r}"
            )
        if self.joint_state_timeout_s <= 0.0:
            raise ConfigError(
                f"{PREFIX}joint_state_timeout_s must be > 0, got {self.joint_state_timeout_s!r}"
            )

    @property
    def uses_arm_kinematics(self) -> bool:
        return self.arm_interface != "servo_twist"

    @property
    def arm_joint_topic(self) -> str:
        """The arm controller's command topic for the joint interfaces."""
        return self.arm_joint_command_topic or DEFAULT_ARM_JOINT_TOPICS[self.arm_interface]


DESCRIPTIONS = {
    "arm_topic": "MoveIt Servo twist input (geometry_msgs/TwistStamped)",
    "arm_frame_id": "frame of the arm twist: the arm base frame, also the workspace box frame",
    "base_topic": "base velocity input of the base controller",
    "base_stamped": "true: geometry_msgs/TwistStamped (Jazzy diff_drive_controller); false: Twist",
    "base_frame_id": "frame of the base twist when base_stamped is true",
    "gripper_topic": "forward_command_controller input (std_msgs/Float64MultiArray, one value)",
    "joint_states_topic": "robot state (sensor_msgs/JointState)",
    "ee_pose_topic": "optional end-effector pose (PoseStamped in arm_frame_id) for the "
    "workspace box; empty: the box is not enforced (in the joint modes, forward kinematics)",
    "arm_interface": "servo_twist: the twist to MoveIt Servo on arm_topic; joint_velocity / "
    "joint_position: joint velocities (or their integral) from the URDF kinematics to a "
    "ros2_control forward controller on arm_joint_command_topic",
    "arm_joint_command_topic": "std_msgs/Float64MultiArray, one value per arm joint; empty: "
    "arm_velocity_controller/commands or arm_position_controller/commands",
    "arm_joints": "arm joints in the controller's order, base to tip",
    "ee_frame_id": "URDF frame whose origin the arm twist moves",
    "robot_description_file": "URDF or .xacro of the robot; empty: the package's "
    "rt_mobile_manipulator.urdf.xacro",
    "joint_state_timeout_s": "joint states older than this stop joint-level motion",
    "max_damping": "damped least squares damping at a singularity",
    "posture_gain_per_s": "nullspace pull towards the zero posture (1/s); 0: off",
    "position_lead_limit": "joint_position: commanded positions stay within this of the "
    "measured ones (rad or m), so that a blocked joint does not wind up",
    "base_interface": "cmd_vel: the base twist on base_topic; joint_velocity: x, y, yaw joint "
    "velocities (odom axes, from the yaw joint state) on base_joint_command_topic",
    "base_joint_command_topic": "std_msgs/Float64MultiArray [vx, vy, wz] for base_joints",
    "base_joints": "the holonomic base's x, y and yaw joints",
    "gripper_joint_count": "0: gripper_topic gets the closedness command (-1 open .. 1 closed); "
    "n > 0: n joint positions between gripper_open_position and gripper_closed_position",
    "gripper_open_position": "finger joint position at closedness -1 (m or rad)",
    "gripper_closed_position": "finger joint position at closedness 1 (m or rad)",
}


def load_robot_description(path: str) -> str:
    """The URDF at `path` (a .xacro is expanded), or the package's robot when `path` is empty."""
    if not path:
        return rd.robot_urdf()
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{PREFIX}robot_description_file {path!r} does not exist")
    if file.suffix == ".xacro":
        import xacro

        return xacro.process_file(str(file)).toprettyxml(indent="  ")
    return file.read_text()


def _seconds(stamp: object) -> float:
    return Time.from_msg(stamp).nanoseconds * 1e-9


def _fill_twist(twist: Twist, command: TwistCommand | None) -> Twist:
    if command is not None:
        twist.linear.x, twist.linear.y, twist.linear.z = command.linear_mps
        twist.angular.x, twist.angular.y, twist.angular.z = command.angular_rps
    return twist


class RosTopicsBackend(RobotBackend):
    """Publishes safe commands to Servo or arm controllers, cmd_vel or a base controller and a
    gripper controller; reads /joint_states."""

    name = "ros_topics"

    def __init__(self) -> None:
        self._node: Node | None = None
        self._config = RosTopicsConfig()
        self._publishers: list[Publisher] = []
        self._subscriptions: list[Subscription] = []
        self._state = RobotState()
        self._kinematics: ArmKinematics | None = None
        self._dt_s = 0.02
        # Newest position per joint and its arrival (node clock s): messages may hold subsets.
        self._positions: dict[str, float] = {}
        self._received_s: dict[str, float] = {}
        self._arm_q_command: np.ndarray | None = None
        self._held_ticks = 0
        self._hold_reason = ""

    @classmethod
    def declare_parameters(cls, node: Node) -> None:
        defaults = RosTopicsConfig()
        for field in fields(defaults):
            name = PREFIX + field.name
            if not node.has_parameter(name):
                descriptor = ParameterDescriptor(description=DESCRIPTIONS[field.name])
                default = getattr(defaults, field.name)
                if isinstance(default, tuple):
                    default = list(default)
                node.declare_parameter(name, default, descriptor)

    def connect(self, node: Node) -> None:
        values = {}
        for field in fields(RosTopicsConfig):
            value = node.get_parameter(PREFIX + field.name).value
            values[field.name] = tuple(value) if isinstance(value, list) else value
        config = RosTopicsConfig(**values)
        self._node, self._config = node, config
        self.arm_frame_id, self.base_frame_id = config.arm_frame_id, config.base_frame_id
        if node.has_parameter("update_rate_hz"):
            self._dt_s = 1.0 / float(node.get_parameter("update_rate_hz").value)
        if config.uses_arm_kinematics:
            self._kinematics = self._load_kinematics(config)
            self._arm_pub = self._publisher(
                Float64MultiArray, "arm_joint_command_topic", config.arm_joint_topic
            )
        else:
            self._arm_pub = self._publisher(TwistStamped, "arm_topic")
        if config.base_interface == "joint_velocity":
            self._base_pub = self._publisher(Float64MultiArray, "base_joint_command_topic")
        else:
            self._base_pub = self._publisher(
                TwistStamped if config.base_stamped else Twist, "base_topic"
            )
        self._gripper_pub = self._publisher(Float64MultiArray, "gripper_topic")
        self._subscription(JointState, "joint_states_topic", self._on_joint_state)
        if config.ee_pose_topic:
            self._subscription(PoseStamped, "ee_pose_topic", self._on_pose)

    @staticmethod
    def _load_kinematics(config: RosTopicsConfig) -> ArmKinematics:
        """The arm's kinematics; pinocchio is imported only when a joint interface is chosen."""
        try:
            from rt_ros.nodes.arm_kinematics import ArmKinematics, ArmKinematicsConfig
        except ImportError as err:
            raise ConfigError(
                f"{PREFIX}arm_interface {config.arm_interface!r} needs pinocchio "
                f"(pip install pin): {err}"
            ) from err
        try:
            settings = ArmKinematicsConfig(
                max_damping=config.max_damping, posture_gain_per_s=config.posture_gain_per_s
            )
        except ConfigError as err:
            raise ConfigError(f"{PREFIX}max_damping / posture_gain_per_s: {err}") from err
        try:
            urdf = load_robot_description(config.robot_description_file)
            return ArmKinematics(
                urdf, config.arm_joints, config.arm_frame_id, config.ee_frame_id, settings
            )
        except (OSError, ValueError, RuntimeError) as err:  # xacro and pinocchio parse errors
            raise ConfigError(
                f"{PREFIX}robot_description_file {config.robot_description_file!r}: {err}"
            ) from err

    def _publisher(self, msg_type: type, field: str, topic: str | None = None) -> Publisher:
        """A command publisher on parameter `field`'s topic (or `topic`, which it stands for)."""
        try:
            publisher = self._node.create_publisher(
                msg_type, topic or getattr(self._config, field), COMMAND_QOS
            )
        except NameValidationException as err:
            raise ConfigError(f"{PREFIX}{field} is not a valid topic name: {err}") from err
        self._publishers.append(publisher)
        return publisher

    def _subscription(self, msg_type: type, field: str, callback: Callable) -> None:
        try:
            subscription = self._node.create_subscription(
                msg_type, getattr(self._config, field), callback, SENSOR_QOS
            )
        except NameValidationException as err:
            raise ConfigError(f"{PREFIX}{field} is not a valid topic name: {err}") from err
        self._subscriptions.append(subscription)

    def _on_joint_state(self, msg: JointState) -> None:
        now_s = self._now_s()
        for name, position in zip(msg.name, msg.position, strict=False):
            self._positions[name] = position
            self._received_s[name] = now_s
        ee_position_m = self._state.ee_position_m
        if self._kinematics is not None and not self._config.ee_pose_topic:
            q = self._joint_positions(self._config.arm_joints, now_s)
            if q is not None:
                ee_position_m = tuple(float(v) for v in self._kinematics.forward(q)[0])
        self._state = RobotState(
            joint_names=tuple(msg.name),
            joint_positions=tuple(msg.position),
            joint_velocities=tuple(msg.velocity),
            ee_position_m=ee_position_m,
            stamp_s=_seconds(msg.header.stamp),
        )

    def _on_pose(self, msg: PoseStamped) -> None:
        position = msg.pose.position
        self._state = RobotState(
            joint_names=self._state.joint_names,
            joint_positions=self._state.joint_positions,
            joint_velocities=self._state.joint_velocities,
            ee_position_m=(position.x, position.y, position.z),
            stamp_s=self._state.stamp_s,
        )

    def _joint_positions(self, names: tuple[str, ...], now_s: float) -> np.ndarray | None:
        """Positions of `names` if every one arrived within joint_state_timeout_s, else None
        (the reason kept for diagnostics)."""
        missing = [name for name in names if name not in self._positions]
        if missing:
            self._hold_reason = f"no joint state for {missing}"
            return None
        timeout_s = self._config.joint_state_timeout_s
        stale = [name for name in names if now_s - self._received_s[name] > timeout_s]
        if stale:
            self._hold_reason = f"joint states older than {timeout_s:g} s for {stale}"
            return None
        q = np.array([self._positions[name] for name in names])
        if not np.all(np.isfinite(q)):
            self._hold_reason = f"non-finite joint positions for {list(names)}"
            return None
        return q

    def read_state(self) -> RobotState:
        return self._state

    def diagnostic_values(self) -> dict[str, str]:
        return {
            "arm_interface": self._config.arm_interface,
            "base_interface": self._config.base_interface,
            "held_without_joint_state": str(self._held_ticks),
            "hold_reason": self._hold_reason,
        }

    def apply(
        self, arm: ArmCommand | None, base: BaseCommand | None, gripper: float | None
    ) -> None:
        if arm is not None:
            self._publish_arm(arm)
        if base is not None:
            self._publish_base(base)
        if gripper is not None:
            self._gripper_pub.publish(Float64MultiArray(data=self._gripper_values(gripper)))

    def _gripper_values(self, closedness: float) -> list[float]:
        config = self._config
        if config.gripper_joint_count == 0:
            return [float(closedness)]
        fraction = (min(max(closedness, -1.0), 1.0) + 1.0) / 2.0
        open_, closed = config.gripper_open_position, config.gripper_closed_position
        return [open_ + fraction * (closed - open_)] * config.gripper_joint_count

    def stop(self) -> None:
        if self._node is None:
            return
        self._publish_arm(None)
        self._publish_base(None)

    def _publish_arm(self, command: ArmCommand | None) -> None:
        if self._kinematics is not None:
            self._publish_arm_joints(command)
            return
        msg = TwistStamped()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.header.frame_id = self.arm_frame_id
        _fill_twist(msg.twist, command)
        self._arm_pub.publish(msg)

    def _publish_arm_joints(self, command: ArmCommand | None) -> None:
        """Joint velocities for the twist (or their integral in joint_position mode); without
        fresh joint states: zero velocities, or the last position command held."""
        moving = command is not None and not command.is_zero()
        q = self._joint_positions(self._config.arm_joints, self._now_s())
        if q is None:
            if moving:
                self._held_ticks += 1
                self._node.get_logger().warning(
                    f"arm command held: {self._hold_reason}",
                    throttle_duration_sec=LOG_THROTTLE_S,
                )
            qdot = None
        elif moving:
            qdot = self._kinematics.twist_to_joint_velocities(q, command.values(), self._dt_s)
        else:
            qdot = np.zeros(len(q))
        if self._config.arm_interface == "joint_velocity":
            values = np.zeros(len(self._config.arm_joints)) if qdot is None else qdot
        else:
            if self._arm_q_command is None:
                if q is None:
                    return  # nothing known to hold: the position controller holds by itself
                self._arm_q_command = q
            if qdot is not None:
                lead = self._config.position_lead_limit
                target = np.clip(self._arm_q_command + qdot * self._dt_s, q - lead, q + lead)
                self._arm_q_command = np.clip(
                    target, self._kinematics.lower, self._kinematics.upper
                )
            values = self._arm_q_command
        self._arm_pub.publish(Float64MultiArray(data=[float(v) for v in values]))

    def _publish_base(self, command: BaseCommand | None) -> None:
        if self._config.base_interface == "joint_velocity":
            self._publish_base_joints(command)
            return
        if not self._config.base_stamped:
            self._base_pub.publish(_fill_twist(Twist(), command))
            return
        msg = TwistStamped()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.header.frame_id = self.base_frame_id
        _fill_twist(msg.twist, command)
        self._base_pub.publish(msg)

    def _publish_base_joints(self, command: BaseCommand | None) -> None:
        """[vx, vy, wz] in odom axes for the x / y / yaw joints: the base-frame twist turned by
        the measured yaw. Without a fresh yaw: zeros."""
        values = [0.0, 0.0, 0.0]
        if command is not None and not command.is_zero():
            yaw_joint = self._config.base_joints[2]
            yaw = self._joint_positions((yaw_joint,), self._now_s())
            if yaw is None:
                self._held_ticks += 1
                self._node.get_logger().warning(
                    f"base command held: {self._hold_reason}",
                    throttle_duration_sec=LOG_THROTTLE_S,
                )
            else:
                cos, sin = math.cos(yaw[0]), math.sin(yaw[0])
                vx, vy, _ = command.linear_mps
                values = [cos * vx - sin * vy, sin * vx + cos * vy, command.angular_rps[2]]
        self._base_pub.publish(Float64MultiArray(data=values))

    def _now_s(self) -> float:
        return self._node.get_clock().now().nanoseconds * 1e-9

    def disconnect(self) -> None:
        if self._node is None:
            return
        for publisher in self._publishers:
            publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
            self._node.destroy_publisher(publisher)
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._publishers, self._subscriptions = [], []
        self._node, self._state = None, RobotState()
        self._kinematics, self._arm_q_command = None, None
        self._positions, self._received_s = {}, {}
