"""The `sim` backend: the embedded MuJoCo mobile manipulator behind the driver's safety layer.

It owns a SimWorld (rt_ros.sim, ROS-free), steps its physics from a timer on the driver node (in
real time, or a fixed step per tick for reproducible runs), publishes the head camera as
sensor_msgs/Image rgb8 at `sim.camera_rate_hz` and /joint_states, and applies what the safety
layer lets through: end-effector twists become joint motion by damped-least-squares IK inside
SimWorld, base twists move the holonomic base, the gripper closes by its closedness command.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, fields

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState

from rt_ros.nodes.backends.robot_backend import BackendError, RobotBackend, RobotState
from rt_ros.nodes.commands import ArmCommand, BaseCommand
from rt_ros.nodes.image_conversion import rgb_to_image_msg
from rt_ros.nodes.qos import SENSOR_QOS
from rt_ros.runtime.errors import ConfigError
from rt_ros.sim.camera_rig import DEFAULT_CAMERA_RIG

PREFIX = "sim."
# Physics never jumps more than this in one update, so a process stalled for longer slows the
# world down instead of letting it leap. Below it the world keeps wall time however long an
# update takes: a policy's command must move the robot as far as it asked (velocity x period),
# as in training. One process holding the driver, the policy and a recorder on two busy cores
# (rendering a shadowed frame takes 60 ms idle) kept only 55% of wall time with a 0.05 s cap.
MAX_STEP_S = 0.5
# Updates over which the real-time factor in /diagnostics is measured.
REAL_TIME_WINDOW = 200
# Rendering may take at most this share of the executor's time: a frame that took longer than
# this share of the camera period postpones the next one, so the camera slows down instead of
# saturating the thread that also steps the physics and delivers the commands. Unpaced, two
# episodes side by side on two cores (97 ms a 320x256 frame at 10 Hz) fell into a crawl: the
# executor's queue grew without bound and commands reached the driver tens of seconds old.
MAX_CAMERA_SHARE = 0.6
# An update less than this share of the update period after the last one is a timer event that
# queued up while the executor was busy: it is dropped (the next update steps the whole time).
BACKLOG_SHARE = 0.25


@dataclass(frozen=True)
class SimBackendConfig:
    """Parameters `sim.<field>` on the driver node."""

    task: str = "pick"
    seed: int = 0
    split: str = "any"
    real_time: bool = True
    step_rate_hz: float = 100.0
    camera_rate_hz: float = 10.0
    camera_rig: str = DEFAULT_CAMERA_RIG
    camera_width_px: int = 0
    camera_height_px: int = 0
    image_topic: str = "camera/image_raw"
    camera_info_topic: str = "camera/camera_info"
    joint_states_topic: str = "joint_states"
    camera_frame_id: str = "head_camera_optical_frame"
    arm_frame_id: str = "base_link"
    base_frame_id: str = "base_link"

    def __post_init__(self) -> None:
        for name in ("step_rate_hz", "camera_rate_hz"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{PREFIX}{name} must be a finite number > 0, got {value!r}")
        if self.camera_rate_hz > self.step_rate_hz:
            raise ConfigError(
                f"{PREFIX}camera_rate_hz ({self.camera_rate_hz}) cannot exceed "
                f"{PREFIX}step_rate_hz ({self.step_rate_hz})"
            )
        from rt_ros.sim.tasks import FAMILIES, SPLITS

        if self.task not in FAMILIES:
            raise ConfigError(f"{PREFIX}task must be one of {list(FAMILIES)}, got {self.task!r}")
        if self.split not in SPLITS:
            raise ConfigError(f"{PREFIX}split must be one of {list(SPLITS)}, got {self.split!r}")


DESCRIPTIONS = {
    "task": "task family laid out at start-up: pick, move_near, knock_over, place_upright, drawer",
    "seed": "layout seed of the task",
    "split": "which layouts and wordings the seed draws from: any, seen (training), "
    "unseen_paraphrase, unseen_combination",
    "real_time": "true: physics follows the wall clock; false: a fixed step per update "
    "(reproducible physics for a given command sequence)",
    "step_rate_hz": "physics updates per second (each advances 1/step_rate_hz in fixed mode)",
    "camera_rate_hz": "head camera frames per second (rendered offscreen)",
    "camera_rig": "where the head camera sits and what it sees (rt_ros/sim/camera_rig.py): "
    "head_v1 (the shipped model's), head_v2; a model sees only the rig it was trained on",
    "camera_width_px": "head camera image width (0: the rig's)",
    "camera_height_px": "head camera image height (0: the rig's)",
    "image_topic": "sensor_msgs/Image rgb8 output of the head camera",
    "camera_info_topic": "sensor_msgs/CameraInfo of the head camera",
    "joint_states_topic": "sensor_msgs/JointState output",
    "camera_frame_id": "frame_id of camera images (ROS optical convention)",
    "arm_frame_id": "frame of arm twists (the robot base frame)",
    "base_frame_id": "frame of base twists",
}


class SimBackend(RobotBackend):
    """MuJoCo robot in the kitchen, stepped and rendered from timers on the driver node."""

    name = "sim"

    def __init__(self) -> None:
        self.world = None  # rt_ros.sim.world.SimWorld once connected
        self.task = None  # the rt_ros.sim Task laid out at connect
        self.config: SimBackendConfig | None = None
        self._node: Node | None = None
        self._timers: list = []
        self._publishers: list = []
        self._last_step_s: float | None = None
        self._next_frame_s = 0.0
        self._arm = (0.0,) * 6
        self._base = (0.0,) * 3
        self._gripper = -1.0
        self.frames_published = 0
        self.frames_postponed = 0  # frames due while the render budget held the camera back
        self.updates_dropped = 0  # timer events that had queued up behind a busy executor
        self._render_s = 0.0  # the last frame's render and publish time
        self._steps_s: deque[tuple[float, float]] = deque(maxlen=REAL_TIME_WINDOW)

    @classmethod
    def declare_parameters(cls, node: Node) -> None:
        for field in fields(SimBackendConfig):
            name = PREFIX + field.name
            if not node.has_parameter(name):
                node.declare_parameter(
                    name, field.default, ParameterDescriptor(description=DESCRIPTIONS[field.name])
                )

    def connect(self, node: Node) -> None:
        from rt_ros.sim.camera_rig import world_config as camera_rig_world_config
        from rt_ros.sim.world import SimWorld

        values = {
            f.name: node.get_parameter(PREFIX + f.name).value for f in fields(SimBackendConfig)
        }
        self.config = config = SimBackendConfig(**values)
        try:
            world_config = camera_rig_world_config(
                config.camera_rig, config.camera_width_px, config.camera_height_px
            )
        except ValueError as error:
            raise ConfigError(f"{PREFIX}camera_*: {error}") from error
        self.world = SimWorld(world_config)
        self.task = self.world.reset(config.seed, config.task, config.split)
        self.arm_frame_id, self.base_frame_id = config.arm_frame_id, config.base_frame_id
        self._node = node
        self._image_pub = node.create_publisher(Image, config.image_topic, SENSOR_QOS)
        self._info_pub = node.create_publisher(CameraInfo, config.camera_info_topic, SENSOR_QOS)
        self._joints_pub = node.create_publisher(JointState, config.joint_states_topic, SENSOR_QOS)
        self._publishers = [self._image_pub, self._info_pub, self._joints_pub]
        group = MutuallyExclusiveCallbackGroup()
        self._timers = [
            node.create_timer(1.0 / config.step_rate_hz, self._update, callback_group=group)
        ]
        node.get_logger().info(
            f"sim: task {config.task} (seed {config.seed}, {config.split}): "
            f"{self.task.instruction!r}; camera {config.camera_rig} "
            f"{world_config.camera.width_px}x{world_config.camera.height_px} at "
            f"{config.camera_rate_hz:g} Hz"
            f" on {config.image_topic}; physics "
            f"{'in real time' if config.real_time else 'in fixed steps'}"
        )

    def _update(self) -> None:
        """Advance physics, then publish joint states and, when due, a camera frame."""
        config = self.config
        now_s = time.monotonic()
        if config.real_time:
            elapsed = 0.0 if self._last_step_s is None else now_s - self._last_step_s
            if self._last_step_s is not None and elapsed < BACKLOG_SHARE / config.step_rate_hz:
                self.updates_dropped += 1
                return
            duration = min(elapsed, MAX_STEP_S)
        else:
            duration = 1.0 / config.step_rate_hz
        self._last_step_s = now_s
        self.world.step(duration)
        self._steps_s.append((now_s, self.world.data.time))
        stamp = self._node.get_clock().now().to_msg()
        self._joints_pub.publish(self._joint_state(stamp))
        if now_s >= self._next_frame_s:
            first = self.frames_published == 0  # includes creating the renderer (~0.7 s)
            started_s = time.monotonic()
            self._publish_frame(stamp)
            self._render_s = time.monotonic() - started_s
            period_s = 1.0 / config.camera_rate_hz
            paced_s = started_s + self._render_s / MAX_CAMERA_SHARE
            self._next_frame_s = max(self._next_frame_s + period_s, now_s)
            if config.real_time and not first and paced_s > self._next_frame_s:
                self._next_frame_s = paced_s
                self.frames_postponed += 1
                self._node.get_logger().warning(
                    f"sim camera behind its {config.camera_rate_hz:g} Hz: a frame takes "
                    f"{1e3 * self._render_s:.0f} ms to render here, so frames come at most every "
                    f"{1e3 * self._render_s / MAX_CAMERA_SHARE:.0f} ms (the machine is too busy)",
                    throttle_duration_sec=10.0,
                )

    def _joint_state(self, stamp) -> JointState:
        state = self.world.state()
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = list(state.joint_names)
        msg.position = state.joint_positions.tolist()
        msg.velocity = state.joint_velocities.tolist()
        return msg

    def _publish_frame(self, stamp) -> None:
        rgb = self.world.render()
        self._image_pub.publish(rgb_to_image_msg(rgb, stamp, self.config.camera_frame_id))
        fields_ = self.world.camera.camera_info()
        info = CameraInfo(
            height=fields_["height"],
            width=fields_["width"],
            distortion_model=fields_["distortion_model"],
            d=fields_["d"],
            k=fields_["k"],
            r=fields_["r"],
            p=fields_["p"],
        )
        info.header.stamp = stamp
        info.header.frame_id = self.config.camera_frame_id
        self._info_pub.publish(info)
        self.frames_published += 1

    def real_time_factor(self) -> float:
        """Simulated seconds per wall second over the last updates (1.0: keeping wall time)."""
        if len(self._steps_s) < 2:
            return math.nan
        (wall_0, sim_0), (wall_1, sim_1) = self._steps_s[0], self._steps_s[-1]
        return (sim_1 - sim_0) / (wall_1 - wall_0) if wall_1 > wall_0 else math.nan

    def diagnostic_values(self) -> dict[str, str]:
        values = {
            "sim_real_time_factor": f"{self.real_time_factor():.3f}",
            "sim_frames_published": str(self.frames_published),
            "sim_frames_postponed": str(self.frames_postponed),
            "sim_render_ms": f"{1e3 * self._render_s:.1f}",
            "sim_updates_dropped": str(self.updates_dropped),
        }
        if self.task is not None:
            values["sim_task"] = f"{self.task.family}: {self.task.instruction}"
        return values

    def read_state(self) -> RobotState:
        if self.world is None:
            return RobotState()
        state = self.world.state()
        return RobotState(
            joint_names=tuple(state.joint_names),
            joint_positions=tuple(state.joint_positions.tolist()),
            joint_velocities=tuple(state.joint_velocities.tolist()),
            ee_position_m=tuple(float(v) for v in state.ee_position_m),
            stamp_s=self._node.get_clock().now().nanoseconds * 1e-9,
        )

    def apply(
        self, arm: ArmCommand | None, base: BaseCommand | None, gripper: float | None
    ) -> None:
        if self.world is None:
            raise BackendError("sim backend is not connected")
        if arm is not None:
            self._arm = (*arm.linear_mps, *arm.angular_rps)
        if base is not None:
            self._base = (base.linear_mps[0], base.linear_mps[1], base.angular_rps[2])
        if gripper is not None:
            self._gripper = gripper
        try:
            self.world.apply(self._arm, self._base, self._gripper)
        except ValueError as error:
            raise BackendError(f"sim rejected the command: {error}") from error

    def stop(self) -> None:
        self._arm, self._base = (0.0,) * 6, (0.0,) * 3
        if self.world is not None:
            self.world.stop()

    def disconnect(self) -> None:
        self.stop()
        if self._node is not None:
            for timer in self._timers:
                self._node.destroy_timer(timer)
            for publisher in self._publishers:
                self._node.destroy_publisher(publisher)
        self._timers, self._publishers = [], []
        if self.world is not None:
            self.world.close()
        self.world = None
