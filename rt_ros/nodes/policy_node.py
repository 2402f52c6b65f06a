"""The policy node: camera frames and an instruction in, RT-1 arm/base/gripper/mode commands out.

The image callback checks a frame's header and stamp and keeps the newest usable frame (a JPEG/PNG
is decoded there, once its declared size passed); a control timer in its own callback group runs
one Policy step per tick on it, so neither a slow model nor a decoder blocks the other. Each
command carries the stamp of the frame it was computed from. No instruction: idle. A new
instruction: the frame-token history is reset. A refused frame (bad header, too large, corrupt,
stamped ahead of the clock, stale, not newer than the newest) is counted and never becomes the
newest. A tick without a fresh usable frame publishes a stop and does not run the model.
`terminate`: stop, report, idle until a new instruction.

`inference: remote` runs the same loop on a RemotePolicy (a policy server over HTTP): a step with
no answer within `remote.deadline_s` publishes a stop and is counted (remote_stops).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float64, String

from rt_ros.nodes.action_commands import PolicyCommands, action_to_commands, stop_commands
from rt_ros.nodes.commands import Mode, TwistCommand
from rt_ros.nodes.image_conversion import (
    DEFAULT_MAX_FRAME_PIXELS,
    OversizedFrameError,
    check_compressed_msg,
    check_image_msg,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    rgb_to_image_msg,
)
from rt_ros.nodes.latency_stats import LatencyWindow, Samples, TickClock
from rt_ros.nodes.qos import COMMAND_QOS, INSTRUCTION_QOS, SENSOR_QOS, STATUS_QOS
from rt_ros.nodes.stamps import stamp_seconds
from rt_ros.nodes.stop_signals import ignore_stop_signals, stop_requested_by_signals
from rt_ros.paths import share_dir
from rt_ros.runtime.action import Action
from rt_ros.runtime.action_space import load_action_space
from rt_ros.runtime.errors import (
    ActionDecodeError,
    BundleError,
    ConfigError,
    FrameError,
    InstructionError,
    RemotePolicyError,
)
from rt_ros.runtime.onnx_session import SessionConfig
from rt_ros.runtime.policy import Policy

if TYPE_CHECKING:  # imported when inference is remote: a local robot needs no HTTP client
    from rt_ros.runtime.remote_policy import RemotePolicy

NODE_NAME = "policy_node"
DEFAULT_BUNDLE = Path("models") / "rt1-tiny"
LOG_THROTTLE_S = 2.0
# How often the main loop looks for a stop request between callbacks.
SPIN_PERIOD_S = 0.1
LATENCY_STAGES = (
    "preprocess",
    "encode",
    "transformer",
    "decode",
    "policy_step",
    "node_overhead",
    "queue_wait",
    "image_to_command",
    "frame_interval",
    "network",  # remote inference: round trip minus the server's own time
)
# Why an incoming frame was refused; each has a counter frames_rejected_<reason> in /diagnostics.
FRAME_REJECT_REASONS = (
    "invalid",  # unsupported encoding, empty, step or data length that disagree
    "oversized",  # more than max_frame_pixels, declared by the header
    "undecodable",  # JPEG/PNG truncated, corrupt, or of another format
    "future_stamp",  # stamped more than max_future_stamp_s ahead of the node's clock
    "stale",  # older than stale_image_timeout_s on arrival
    "out_of_order",  # not newer than the newest frame already taken
    "unusable",  # refused by the policy at a control tick
)
INFERENCE_MODES = ("local", "remote")
# events (default): rclpy's EventsExecutor, one thread; a CompressedImage decode runs between
# ticks. multi_threaded: intake, control and dispatch on threads of their own. With rt1-tiny at
# 20 Hz and a 640x480 camera at 30 Hz on 2 cores (bench-node, one after the other), events held
# 20 Hz with no missed tick and every frame delivered; multi_threaded reached 6.5-7.6 Hz, missed
# 387-566 ticks a minute and lost a fifth to a third of the frames.
EXECUTORS = ("events", "multi_threaded")
REMOTE_KINDS = ("rt_ros", "openvla", "rt2_text")
# remote.deadline_s 0: this fraction of the control period, leaving the rest for the node.
DEFAULT_DEADLINE_FRACTION = 0.5


def _float_range(low: float, high: float) -> list[FloatingPointRange]:
    return [FloatingPointRange(from_value=low, to_value=high, step=0.0)]


def _int_range(low: int, high: int) -> list[IntegerRange]:
    return [IntegerRange(from_value=low, to_value=high, step=1)]


# name -> (default, description, range); read once at start-up into PolicyNodeSettings.
PARAMETERS: dict[str, tuple[Any, str, list | None]] = {
    "inference": ("local", "local: run the bundle here; remote: ask the policy server", None),
    "model_path": ("", "model bundle folder; empty: the package's models/rt1-tiny", None),
    "action_space": (
        "",
        "action-space profile name or YAML path overriding the bundle's own (same number of "
        "dimensions and bins); empty: the profile stored in the bundle",
        None,
    ),
    "providers": (
        ["auto"],
        "inference providers in order of preference: auto (cuda, cpu; at bf16 cuda, openvino, "
        "cpu), tensorrt, cuda, openvino, cpu",
        None,
    ),
    "precision": (
        "f32",
        "f32, tf32 (CUDA's TF32 tensor-core mode), f16 (CUDA, TensorRT) or bf16 (openvino)",
        None,
    ),
    "intra_op_threads": (0, "threads per graph; 0: one per core", _int_range(0, 256)),
    "use_cuda_graph": (False, "capture and replay CUDA graphs (CUDA provider only)", None),
    "spin_wait": (
        False,
        "ONNX Runtime threads spin after a run (quicker on an idle machine, but they take the "
        "cores from every other thread meanwhile)",
        None,
    ),
    "control_rate_hz": (3.0, "policy steps per second (RT-1: 3 Hz)", _float_range(0.1, 100.0)),
    "executor": (
        "events",
        "events (rclpy's EventsExecutor: one thread; a JPEG/PNG decode runs between control "
        "ticks) or multi_threaded (intake, control and dispatch threads)",
        None,
    ),
    "stale_image_timeout_s": (
        0.5,
        "a frame older than this (by its stamp) is stale: publish a stop, do not run the model",
        _float_range(0.01, 10.0),
    ),
    "max_history_gap_s": (
        2.0,
        "frames further apart than this drop the frame-token history",
        _float_range(0.01, 3600.0),
    ),
    "max_future_stamp_s": (
        0.1,
        "frames stamped further ahead of the node's clock are refused (as the driver refuses "
        "commands); a bad stamp never becomes the newest frame",
        _float_range(0.0, 10.0),
    ),
    "max_frame_pixels": (
        DEFAULT_MAX_FRAME_PIXELS,
        "larger frames (raw, or as a JPEG/PNG header declares) are refused before conversion, "
        "bounding the memory one frame takes; default 3840x2160",
        _int_range(1, 8192 * 8192),
    ),
    "max_instruction_chars": (
        1000,
        "longer instructions are rejected (and counted) rather than embedded",
        _int_range(1, 1_000_000),
    ),
    "remote.url": ("", "policy server URL (inference: remote), e.g. http://gpu-box:8700", None),
    "remote.kind": (
        "rt_ros",
        "rt_ros (rt-ros serve), openvla (POST /act, 7-D action), rt2_text (RT-2 action text)",
        None,
    ),
    "remote.deadline_s": (
        0.0,
        "a step without an answer this long after it was sent publishes a stop; "
        f"0: {DEFAULT_DEADLINE_FRACTION:g} x the control period",
        _float_range(0.0, 60.0),
    ),
    "remote.token": ("", "bearer token of the policy server; empty: none", None),
    "remote.frame_encoding": ("jpeg", "rt_ros kind: frames sent as jpeg or rgb8", None),
    "image_topic": ("camera/image_raw", "sensor_msgs/Image input", None),
    "compressed_image_topic": (
        "",
        "optional sensor_msgs/CompressedImage input (JPEG/PNG); empty: not subscribed",
        None,
    ),
    "instruction_topic": ("instruction", "std_msgs/String instruction (transient local)", None),
    "arm_command_topic": ("cmd/arm", "geometry_msgs/TwistStamped end-effector twist out", None),
    "base_command_topic": ("cmd/base", "geometry_msgs/TwistStamped base twist out", None),
    "gripper_command_topic": ("cmd/gripper", "std_msgs/Float64 gripper closedness out", None),
    "mode_topic": ("cmd/mode", "std_msgs/String mode out: arm | base | terminate", None),
    "arm_frame_id": ("base_link", "frame_id of arm commands (the arm base frame)", None),
    "base_frame_id": ("base_link", "frame_id of base commands", None),
    "publish_debug_image": (False, "publish the frame with instruction and action drawn", None),
    "debug_image_topic": ("policy/debug_image", "sensor_msgs/Image debug output", None),
    "diagnostics_period_s": (1.0, "period of /diagnostics messages", _float_range(0.05, 60.0)),
    "latency_window_size": (
        200,
        "latency percentiles in /diagnostics cover this many most recent steps",
        _int_range(10, 1_000_000),
    ),
}


@dataclass(frozen=True)
class PolicyNodeSettings:
    """The node's parameters, validated once; field names are parameter names (dots as
    underscores: remote.url is remote_url)."""

    inference: str
    model_path: str
    action_space: str
    providers: tuple[str, ...]
    precision: str
    intra_op_threads: int
    use_cuda_graph: bool
    spin_wait: bool
    control_rate_hz: float
    executor: str
    stale_image_timeout_s: float
    max_history_gap_s: float
    max_future_stamp_s: float
    max_frame_pixels: int
    max_instruction_chars: int
    remote_url: str
    remote_kind: str
    remote_deadline_s: float
    remote_token: str
    remote_frame_encoding: str
    image_topic: str
    compressed_image_topic: str
    instruction_topic: str
    arm_command_topic: str
    base_command_topic: str
    gripper_command_topic: str
    mode_topic: str
    arm_frame_id: str
    base_frame_id: str
    publish_debug_image: bool
    debug_image_topic: str
    diagnostics_period_s: float
    latency_window_size: int

    def __post_init__(self) -> None:
        for name in (
            "control_rate_hz",
            "stale_image_timeout_s",
            "max_history_gap_s",
            "diagnostics_period_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"parameter {name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(self.max_future_stamp_s) and self.max_future_stamp_s >= 0):
            raise ConfigError(
                f"parameter max_future_stamp_s must be a finite number >= 0, got "
                f"{self.max_future_stamp_s!r}"
            )
        for name in (
            "image_topic",
            "instruction_topic",
            "arm_command_topic",
            "base_command_topic",
            "gripper_command_topic",
            "mode_topic",
        ):
            if not getattr(self, name):
                raise ConfigError(f"parameter {name} must name a topic, got an empty string")
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"parameter executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}"
            )
        if self.inference not in INFERENCE_MODES:
            raise ConfigError(
                f"parameter inference must be one of {', '.join(INFERENCE_MODES)}, got "
                f"{self.inference!r}"
            )
        if self.inference == "remote" and not self.remote_url:
            raise ConfigError(
                "parameter remote.url must name the policy server (inference: remote)"
            )
        if self.remote_kind not in REMOTE_KINDS:
            raise ConfigError(
                f"parameter remote.kind must be one of {', '.join(REMOTE_KINDS)}, got "
                f"{self.remote_kind!r}"
            )

    @property
    def remote_deadline(self) -> float:
        """remote.deadline_s, or its default share of the control period."""
        return self.remote_deadline_s or DEFAULT_DEADLINE_FRACTION * self.control_period_s

    @property
    def control_period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    def bundle_path(self) -> Path:
        return Path(self.model_path) if self.model_path else share_dir() / DEFAULT_BUNDLE


class PolicyState(str, Enum):
    IDLE = "idle (no instruction)"
    RUNNING = "running"
    TERMINATED = "terminated (waiting for a new instruction)"


@dataclass(frozen=True)
class _Frame:
    """The newest usable frame: a checked raw Image (converted when a tick uses it) or the RGB
    pixels of a decoded JPEG/PNG."""

    source: Image | np.ndarray
    stamp: Any  # builtin_interfaces/Time, for the commands computed from this frame
    stamp_s: float
    received_s: float  # time.monotonic() at intake

    def rgb(self, max_pixels: int) -> np.ndarray:
        if isinstance(self.source, np.ndarray):
            return self.source
        return image_msg_to_rgb(self.source, max_pixels)


def _twist_msg(command: TwistCommand, stamp: Any, frame_id: str) -> TwistStamped:
    msg = TwistStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = command.linear_mps
    msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = command.angular_rps
    return msg


class PolicyNode(Node):
    """Runs an RT-1 model bundle at `control_rate_hz` on the newest camera frame."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, description, value_range) in PARAMETERS.items():
            descriptor = ParameterDescriptor(description=description)
            if value_range and isinstance(value_range[0], FloatingPointRange):
                descriptor.floating_point_range = value_range
            elif value_range:
                descriptor.integer_range = value_range
            self.declare_parameter(name, default, descriptor)
        self.settings = self._read_settings()
        settings = self.settings
        self.policy = self._make_policy(settings)
        self.action_space = self.policy.action_space
        if settings.action_space and self.remote is None:
            self.get_logger().warning(
                f"action space {settings.action_space} overrides the bundle's own "
                f"({self.policy.bundle.manifest.action_space.name})"
            )
        self.state = PolicyState.IDLE
        self._lock = threading.Lock()
        self._newest: _Frame | None = None
        self._pending_instruction: str | None = None
        self._last_stamp_s: float | None = None
        self._counts = dict.fromkeys(
            (
                "frames_received",
                "frames_rejected",
                *(f"frames_rejected_{reason}" for reason in FRAME_REJECT_REASONS),
                "stale_ticks",
                "held_ticks",
                "instructions_received",
                "instructions_rejected",
                "decode_errors",
                "remote_stops",
                "steps",
                "episodes_terminated",
            ),
            0,
        )
        self._latency = {
            stage: LatencyWindow(settings.latency_window_size) for stage in LATENCY_STAGES
        }
        self._ticks = TickClock(settings.control_period_s)
        self._last_received_s: float | None = None

        intake = MutuallyExclusiveCallbackGroup()
        control = MutuallyExclusiveCallbackGroup()
        self.create_subscription(
            Image, settings.image_topic, self._on_image, SENSOR_QOS, callback_group=intake
        )
        if settings.compressed_image_topic:
            self.create_subscription(
                CompressedImage,
                settings.compressed_image_topic,
                self._on_compressed_image,
                SENSOR_QOS,
                callback_group=intake,
            )
        self.create_subscription(
            String,
            settings.instruction_topic,
            self._on_instruction,
            INSTRUCTION_QOS,
            callback_group=intake,
        )
        self._arm_pub = self.create_publisher(
            TwistStamped, settings.arm_command_topic, COMMAND_QOS
        )
        self._base_pub = self.create_publisher(
            TwistStamped, settings.base_command_topic, COMMAND_QOS
        )
        self._gripper_pub = self.create_publisher(
            Float64, settings.gripper_command_topic, COMMAND_QOS
        )
        self._mode_pub = self.create_publisher(String, settings.mode_topic, COMMAND_QOS)
        self._debug_pub = (
            self.create_publisher(Image, settings.debug_image_topic, SENSOR_QOS)
            if settings.publish_debug_image
            else None
        )
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", STATUS_QOS)
        self.create_timer(settings.control_period_s, self._on_control_tick, callback_group=control)
        self.create_timer(
            settings.diagnostics_period_s, self._publish_diagnostics, callback_group=intake
        )
        if self.remote is not None:
            source = (
                f"remote {settings.remote_kind} policy at {settings.remote_url} (deadline "
                f"{settings.remote_deadline * 1e3:.0f} ms)"
            )
        else:
            manifest = self.policy.bundle.manifest
            untrained = manifest.untrained
            source = (
                f"bundle {settings.bundle_path()} (preset {manifest.preset}"
                f"{', UNTRAINED: actions carry no meaning' if untrained else ''}), "
                f"frame encoder on {self.policy.bundle.frame_encoder.description}"
            )
        self.get_logger().info(
            f"ready: {source}, "
            f"{settings.control_rate_hz:g} Hz, action space {self.action_space.name}; "
            f"waiting for an instruction on {settings.instruction_topic}"
        )

    # --- configuration ---------------------------------------------------------------------

    def _make_policy(self, settings: PolicyNodeSettings) -> Policy | RemotePolicy:
        """The local Policy on the bundle, or a RemotePolicy: the same interface either way."""
        action_space = load_action_space(settings.action_space) if settings.action_space else None
        self.remote = None
        if settings.inference == "remote":
            from rt_ros.runtime.remote_policy import RemoteConfig, RemotePolicy

            self.remote = RemotePolicy(
                RemoteConfig(
                    url=settings.remote_url,
                    kind=settings.remote_kind,
                    deadline_s=settings.remote_deadline,
                    token=settings.remote_token,
                    frame_encoding=settings.remote_frame_encoding,
                    max_history_gap_s=settings.max_history_gap_s,
                ),
                action_space=action_space,
            )
            return self.remote
        return Policy.from_bundle(
            settings.bundle_path(),
            SessionConfig(
                providers=settings.providers,
                precision=settings.precision,
                intra_op_threads=settings.intra_op_threads,
                use_cuda_graph=settings.use_cuda_graph,
                spin_wait=settings.spin_wait,
            ),
            max_history_gap_s=settings.max_history_gap_s,
            action_space=action_space,
        )

    def destroy_node(self) -> None:
        # Also called (by rclpy's shutdown) on a node whose __init__ failed on a bad parameter.
        remote = getattr(self, "remote", None)
        if remote is not None:
            remote.close()
        super().destroy_node()

    def _read_settings(self) -> PolicyNodeSettings:
        values = {name.replace(".", "_"): self.get_parameter(name).value for name in PARAMETERS}
        values["providers"] = tuple(values["providers"])
        try:
            SessionConfig(providers=values["providers"], precision=values["precision"])
        except ConfigError as error:
            raise ConfigError(f"parameter {error}") from error
        return PolicyNodeSettings(**values)

    # --- intake (checks and stores only) ------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _on_image(self, msg: Image) -> None:
        received_s = self._note_received()
        try:
            check_image_msg(msg, self.settings.max_frame_pixels)
        except FrameError as error:
            self._reject_frame(
                "oversized" if isinstance(error, OversizedFrameError) else "invalid"
            )
            self._warn_rejected(f"rejected image: {error}")
            return
        if not self._refuse_stamp(msg.header.stamp):
            self._store(msg, msg.header.stamp, received_s)

    def _on_compressed_image(self, msg: CompressedImage) -> None:
        """Header and stamp first (microseconds), then the decode, here in intake: the control
        tick never waits for a decoder, and every frame that does not decode is counted."""
        received_s = self._note_received()
        max_pixels = self.settings.max_frame_pixels
        try:
            check_compressed_msg(msg, max_pixels)
        except FrameError as error:
            self._reject_frame(
                "oversized" if isinstance(error, OversizedFrameError) else "undecodable"
            )
            self._warn_rejected(f"rejected compressed image: {error}")
            return
        if self._refuse_stamp(msg.header.stamp):
            return
        try:
            rgb = compressed_msg_to_rgb(msg, max_pixels)
        except FrameError as error:
            self._reject_frame("undecodable")
            self._warn_rejected(f"rejected compressed image: {error}")
            return
        self._store(rgb, msg.header.stamp, received_s)

    def _note_received(self) -> float:
        received_s = time.monotonic()
        with self._lock:
            self._counts["frames_received"] += 1
            if self._last_received_s is not None:
                self._latency["frame_interval"].add((received_s - self._last_received_s) * 1e3)
            self._last_received_s = received_s
        return received_s

    def _reject_frame(self, reason: str) -> None:
        with self._lock:
            self._counts["frames_rejected"] += 1
            self._counts[f"frames_rejected_{reason}"] += 1

    def _warn_rejected(self, text: str) -> None:
        # One call site, so one throttle for every kind of refusal; the counters tell them apart.
        self.get_logger().warning(text, throttle_duration_sec=LOG_THROTTLE_S)

    def _refuse_stamp(self, stamp: Any) -> bool:
        """Count and report a stamp ahead of the clock, stale, or not newer than the newest
        frame; True when refused. A refused stamp never becomes the newest frame, so it cannot
        hold back the frames that follow it."""
        stamp_s, now_s = stamp_seconds(stamp), self._now_s()
        settings = self.settings
        with self._lock:
            newest = self._newest
            if newest is not None and newest.stamp_s - now_s > settings.max_future_stamp_s:
                # The clock went back (a simulation or bag restarted): the newest frame is from
                # the clock's old future, and orders nothing any more.
                self._newest = newest = None
        ahead_s = stamp_s - now_s
        if ahead_s > settings.max_future_stamp_s:
            reason = "future_stamp"
            limit = f"max_future_stamp_s {settings.max_future_stamp_s:g}"
            detail = f"stamped {ahead_s:.3f} s ahead of the clock ({limit})"
        elif -ahead_s > settings.stale_image_timeout_s:
            reason = "stale"
            limit = f"stale_image_timeout_s {settings.stale_image_timeout_s:g}"
            detail = f"{-ahead_s:.3f} s old on arrival ({limit})"
        elif newest is not None and stamp_s <= newest.stamp_s:
            reason = "out_of_order"
            detail = f"stamp {stamp_s:.6f} s is not newer than the newest {newest.stamp_s:.6f} s"
        else:
            return False
        self._reject_frame(reason)
        self._warn_rejected(f"rejected frame: {detail}")
        return True

    def _store(self, source: Image | np.ndarray, stamp: Any, received_s: float) -> None:
        frame = _Frame(source, stamp, stamp_seconds(stamp), received_s)
        with self._lock:
            self._newest = frame

    def _on_instruction(self, msg: String) -> None:
        self._count("instructions_received")
        text = msg.data.strip()
        limit = self.settings.max_instruction_chars
        if not text or len(msg.data) > limit:
            self._count("instructions_rejected")
            reason = "empty" if not text else f"{len(msg.data)} characters (limit {limit})"
            self.get_logger().warning(
                f"rejected instruction: {reason}", throttle_duration_sec=LOG_THROTTLE_S
            )
            return
        with self._lock:
            self._pending_instruction = text

    # --- control -----------------------------------------------------------------------------

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _is_fresh(self, frame: _Frame, now_s: float) -> bool:
        age_s = now_s - frame.stamp_s
        return -self.settings.max_future_stamp_s <= age_s <= self.settings.stale_image_timeout_s

    def _on_control_tick(self) -> None:
        tick_start_s = time.monotonic()
        self._ticks.tick(tick_start_s)
        with self._lock:
            instruction, self._pending_instruction = self._pending_instruction, None
            frame = self._newest
            camera_heard = self._counts["frames_received"] > 0
        if instruction is not None:
            self._start_episode(instruction)
        if self.state is not PolicyState.RUNNING:
            return
        now = self.get_clock().now()
        now_s = now.nanoseconds * 1e-9
        if frame is None or not self._is_fresh(frame, now_s):
            if camera_heard:  # before the camera's first frame nothing has moved: no stop needed
                self._stop_for_lack_of_frame(frame, now)
            return
        if self._last_stamp_s is not None and frame.stamp_s == self._last_stamp_s:
            self._count("held_ticks")
            return  # no new frame since the last step; the driver holds the last command
        self._step(frame, tick_start_s)

    def _stop_for_lack_of_frame(self, frame: _Frame | None, now: Time) -> None:
        now_s = now.nanoseconds * 1e-9
        self._count("stale_ticks")
        if frame is None:
            why = "no usable camera frame"
        elif frame.stamp_s > now_s:
            why = f"the newest frame is stamped {frame.stamp_s - now_s:.2f} s ahead of the clock"
        else:
            why = f"the newest usable frame is {now_s - frame.stamp_s:.2f} s old"
        self.get_logger().warning(
            f"{why} (stale_image_timeout_s {self.settings.stale_image_timeout_s}): stopping",
            throttle_duration_sec=LOG_THROTTLE_S,
        )
        self._publish(stop_commands(now_s), now.to_msg())

    def _start_episode(self, instruction: str) -> None:
        try:
            self.policy.reset(instruction)
        except InstructionError as error:
            self._count("instructions_rejected")
            self.get_logger().warning(
                f"rejected instruction: {error}", throttle_duration_sec=LOG_THROTTLE_S
            )
            return
        self.state = PolicyState.RUNNING
        self._last_stamp_s = None
        self.get_logger().info(f"new instruction: {instruction!r} (history reset)")

    def _step(self, frame: _Frame, tick_start_s: float) -> None:
        if self._last_stamp_s is not None and frame.stamp_s < self._last_stamp_s:
            # Only after the clock went back (see _refuse_stamp): the old history cannot continue.
            self.get_logger().warning(
                f"frame stamps went back by {self._last_stamp_s - frame.stamp_s:.2f} s "
                "(clock reset?): history reset",
                throttle_duration_sec=LOG_THROTTLE_S,
            )
            self.policy.reset(self.policy.instruction)
        self._last_stamp_s = frame.stamp_s
        now = self.get_clock().now()
        try:
            rgb = frame.rgb(self.settings.max_frame_pixels)
            action = self.policy.step(rgb, frame.stamp_s)
        except FrameError as error:
            self._reject_frame("unusable")
            self.get_logger().warning(
                f"rejected frame, stopping: {error}", throttle_duration_sec=LOG_THROTTLE_S
            )
            self._publish(stop_commands(now.nanoseconds * 1e-9), now.to_msg())
            return
        except RemotePolicyError as error:
            self._count("remote_stops")
            self.get_logger().warning(
                f"no action from the policy server, stopping: {error}",
                throttle_duration_sec=LOG_THROTTLE_S,
            )
            self._publish(stop_commands(now.nanoseconds * 1e-9), now.to_msg())
            return
        except ActionDecodeError as error:
            self._count("decode_errors")
            self.get_logger().error(
                f"model output not decodable, stopping: {error}",
                throttle_duration_sec=LOG_THROTTLE_S,
            )
            self._publish(stop_commands(now.nanoseconds * 1e-9), now.to_msg())
            return
        commands = action_to_commands(
            action, self.action_space, self.settings.control_period_s, frame.stamp_s
        )
        self._publish(commands, frame.stamp)
        self._record_latency(frame, tick_start_s)
        self._count("steps")
        if self._debug_pub is not None:
            self._publish_debug_image(rgb, action, frame.stamp)
        if commands.mode is Mode.TERMINATE:
            self._count("episodes_terminated")
            self.state = PolicyState.TERMINATED
            self.get_logger().info(
                f"the policy terminated the episode for {self.policy.instruction!r}; "
                f"stopped, idle until a new instruction"
            )

    def _publish(self, commands: PolicyCommands, stamp: Any) -> None:
        if not self.context.ok():
            return  # shutting down: the context is already closed
        settings = self.settings
        self._arm_pub.publish(_twist_msg(commands.arm, stamp, settings.arm_frame_id))
        self._base_pub.publish(_twist_msg(commands.base, stamp, settings.base_frame_id))
        if commands.gripper_closedness is not None:
            self._gripper_pub.publish(Float64(data=float(commands.gripper_closedness)))
        self._mode_pub.publish(String(data=commands.mode.value))

    def _record_latency(self, frame: _Frame, tick_start_s: float) -> None:
        done_s = time.monotonic()
        timings = self.policy.last_timings
        samples = {
            "preprocess": timings.preprocess_ms,
            "encode": timings.encode_ms,
            "transformer": timings.transformer_ms,
            "decode": timings.decode_ms,
            "policy_step": timings.total_ms,
            "node_overhead": (done_s - tick_start_s) * 1e3 - timings.total_ms,
            "queue_wait": (tick_start_s - frame.received_s) * 1e3,
            "image_to_command": (done_s - frame.received_s) * 1e3,
        }
        if self.remote is not None:
            samples["network"] = self.remote.last_network_ms
        with self._lock:
            for stage, value_ms in samples.items():
                self._latency[stage].add(value_ms)

    def _publish_debug_image(self, rgb: np.ndarray, action: Action, stamp: Any) -> None:
        canvas = np.ascontiguousarray(rgb).copy()
        lines = [
            self.policy.instruction or "",
            f"mode {action.mode}  tokens {' '.join(str(t) for t in action.tokens)}",
        ]
        for row, text in enumerate(lines):
            origin = (8, 20 + 20 * row)
            cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3)
            cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        self._debug_pub.publish(rgb_to_image_msg(canvas, stamp, self.settings.arm_frame_id))

    # --- diagnostics -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """The node's counters (as in /diagnostics) and its missed control ticks."""
        with self._lock:
            counts = dict(self._counts)
        counts["missed_ticks"] = self._ticks.missed_ticks
        return counts

    def latency_ms(self) -> dict[str, tuple[float, float]]:
        """(p50, p99) in ms of each stage over the latency window; NaN before the first step."""
        return {
            stage: (s.percentile(50), s.percentile(99)) for stage, s in self._samples().items()
        }

    def _samples(self) -> dict[str, Samples]:
        with self._lock:  # copies only: the control tick must not wait for percentiles
            return {stage: window.copy() for stage, window in self._latency.items()}

    def _policy_description(self) -> dict[str, str]:
        """Where the policy runs: the bundle and its providers, or the server and its requests."""
        if self.remote is not None:
            return self.remote.describe()
        bundle = self.policy.bundle
        return {
            "inference": "local",
            "model_path": str(bundle.path),
            "preset": bundle.manifest.preset,
            "provider_frame_encoder": bundle.frame_encoder.provider,
            "provider_policy": bundle.policy.provider,
        }

    def _publish_diagnostics(self) -> None:
        samples = self._samples()
        with self._lock:
            counts = dict(self._counts)
            newest = self._newest
        status = DiagnosticStatus(name=f"{self.get_name()}: policy", hardware_id="rt_ros")
        status.level, status.message = DiagnosticStatus.OK, self.state.value
        if self.state is PolicyState.RUNNING and counts["frames_received"] == 0:
            status.level, status.message = DiagnosticStatus.WARN, "waiting for camera frames"
        elif self.state is PolicyState.RUNNING and (
            newest is None or not self._is_fresh(newest, self._now_s())
        ):
            status.level = DiagnosticStatus.WARN
            status.message = "no fresh usable camera frame: stopping"
        values = {
            "state": self.state.name.lower(),
            "instruction": self.policy.instruction or "",
            **self._policy_description(),
            "control_rate_hz": f"{self.settings.control_rate_hz:g}",
            "achieved_rate_hz": f"{self._ticks.rate_hz:.2f}",
            "missed_ticks": str(self._ticks.missed_ticks),
            **{name: str(value) for name, value in counts.items()},
        }
        for stage, stage_samples in samples.items():
            if stage == "network" and self.remote is None:
                continue
            values[f"{stage}_ms_p50"] = f"{stage_samples.percentile(50):.2f}"
            values[f"{stage}_ms_p99"] = f"{stage_samples.percentile(99):.2f}"
        # The longest wait between two frames received: how the camera's delivery looks.
        values["frame_interval_ms_max"] = f"{samples['frame_interval'].percentile(100):.2f}"
        status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
        message = DiagnosticArray(status=[status])
        message.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(message)


def make_executor(kind: str) -> Executor:
    """The executor the `executor` parameter names; multi_threaded where this rclpy has no
    EventsExecutor (Jazzy before rclpy 7.1.4)."""
    if kind == "events":
        try:
            from rclpy.experimental import EventsExecutor
        except ImportError:
            rclpy.logging.get_logger(NODE_NAME).warning(
                "executor events: this rclpy has no rclpy.experimental.EventsExecutor; "
                "running multi_threaded"
            )
        else:
            return EventsExecutor()
    # Intake, the control tick and the executor's own dispatch each get a thread: with two, a
    # control tick was occasionally skipped at 20 Hz on two CPU cores (see README, bench-node).
    return MultiThreadedExecutor(num_threads=3)


def main(args: list[str] | None = None) -> int:
    """Console script `policy_node` (also `python -m rt_ros.nodes.policy_node`): runs until
    SIGINT/SIGTERM (however many arrive), then exits 0."""
    # Before the bundle loads (seconds): a stop requested meanwhile ends the node right after.
    stop_requested = stop_requested_by_signals()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = PolicyNode()
    except (ConfigError, BundleError) as error:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {error}")
        rclpy.try_shutdown()
        return 2
    executor = make_executor(node.settings.executor)
    executor.add_node(node)
    try:
        while not stop_requested.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
    except ExternalShutdownException:
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        ignore_stop_signals()
    return 0


if __name__ == "__main__":
    sys.exit(main())
