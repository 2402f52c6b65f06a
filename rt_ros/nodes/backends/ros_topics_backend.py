"""The `ros_topics` backend: a real robot driven through standard ROS 2 controller topics.

Arm: TwistStamped to MoveIt Servo (`servo_node/delta_twist_cmds`). Base: cmd_vel, TwistStamped
by default as Jazzy's diff_drive_controller expects, or plain Twist. Gripper: a
forward_command_controller's Float64MultiArray. State: sensor_msgs/JointState, and optionally the
end-effector pose (PoseStamped in the arm base frame) so the workspace box can be enforced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

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

PREFIX = "ros_topics."
# How long disconnect waits for subscribers to acknowledge the final stop.
ACK_TIMEOUT_S = 0.2


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

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            name = PREFIX + field.name
            if field.name == "base_stamped":
                if not isinstance(value, bool):
                    raise ConfigError(f"{name} must be true or false, got {value!r}")
            elif not isinstance(value, str) or (not value and field.name != "ee_pose_topic"):
                raise ConfigError(f"{name} must be a non-empty string, got {value!r}")


DESCRIPTIONS = {
    "arm_topic": "MoveIt Servo twist input (geometry_msgs/TwistStamped)",
    "arm_frame_id": "frame of the arm twist: the arm base frame, also the workspace box frame",
    "base_topic": "base velocity input of the base controller",
    "base_stamped": "true: geometry_msgs/TwistStamped (Jazzy diff_drive_controller); false: Twist",
    "base_frame_id": "frame of the base twist when base_stamped is true",
    "gripper_topic": "forward_command_controller input (std_msgs/Float64MultiArray, one value)",
    "joint_states_topic": "robot state (sensor_msgs/JointState)",
    "ee_pose_topic": "optional end-effector pose (PoseStamped in arm_frame_id) for the "
    "workspace box; empty: the box is not enforced",
}


def _seconds(stamp: object) -> float:
    return Time.from_msg(stamp).nanoseconds * 1e-9


def _fill_twist(twist: Twist, command: TwistCommand | None) -> Twist:
    if command is not None:
        twist.linear.x, twist.linear.y, twist.linear.z = command.linear_mps
        twist.angular.x, twist.angular.y, twist.angular.z = command.angular_rps
    return twist


class RosTopicsBackend(RobotBackend):
    """Publishes safe commands to Servo, cmd_vel and a gripper controller; reads /joint_states."""

    name = "ros_topics"

    def __init__(self) -> None:
        self._node: Node | None = None
        self._config = RosTopicsConfig()
        self._publishers: list[Publisher] = []
        self._subscriptions: list[Subscription] = []
        self._state = RobotState()

    @classmethod
    def declare_parameters(cls, node: Node) -> None:
        defaults = RosTopicsConfig()
        for field in fields(defaults):
            name = PREFIX + field.name
            if not node.has_parameter(name):
                descriptor = ParameterDescriptor(description=DESCRIPTIONS[field.name])
                node.declare_parameter(name, getattr(defaults, field.name), descriptor)

    def connect(self, node: Node) -> None:
        config = RosTopicsConfig(
            **{f.name: node.get_parameter(PREFIX + f.name).value for f in fields(RosTopicsConfig)}
        )
        self._node, self._config = node, config
        self.arm_frame_id, self.base_frame_id = config.arm_frame_id, config.base_frame_id
        self._arm_pub = self._publisher(TwistStamped, "arm_topic")
        self._base_pub = self._publisher(
            TwistStamped if config.base_stamped else Twist, "base_topic"
        )
        self._gripper_pub = self._publisher(Float64MultiArray, "gripper_topic")
        self._subscription(JointState, "joint_states_topic", self._on_joint_state)
        if config.ee_pose_topic:
            self._subscription(PoseStamped, "ee_pose_topic", self._on_pose)

    def _publisher(self, msg_type: type, field: str) -> Publisher:
        try:
            publisher = self._node.create_publisher(
                msg_type, getattr(self._config, field), COMMAND_QOS
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
        self._state = RobotState(
            joint_names=tuple(msg.name),
            joint_positions=tuple(msg.position),
            joint_velocities=tuple(msg.velocity),
            ee_position_m=self._state.ee_position_m,
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

    def read_state(self) -> RobotState:
        return self._state

    def apply(
        self, arm: ArmCommand | None, base: BaseCommand | None, gripper: float | None
    ) -> None:
        if arm is not None:
            self._publish_arm(arm)
        if base is not None:
            self._publish_base(base)
        if gripper is not None:
            self._gripper_pub.publish(Float64MultiArray(data=[float(gripper)]))

    def stop(self) -> None:
        if self._node is None:
            return
        self._publish_arm(None)
        self._publish_base(None)

    def _publish_arm(self, command: ArmCommand | None) -> None:
        msg = TwistStamped()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.header.frame_id = self.arm_frame_id
        _fill_twist(msg.twist, command)
        self._arm_pub.publish(msg)

    def _publish_base(self, command: BaseCommand | None) -> None:
        if not self._config.base_stamped:
            self._base_pub.publish(_fill_twist(Twist(), command))
            return
        msg = TwistStamped()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.header.frame_id = self.base_frame_id
        _fill_twist(msg.twist, command)
        self._base_pub.publish(msg)

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
