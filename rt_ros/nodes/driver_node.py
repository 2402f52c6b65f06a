"""The driver node: policy commands in, safe commands out to a robot backend, status out.

A lifecycle node. Parameters are read and validated in on_configure; subscriptions, publishers and
timers are created there too. Motion happens only while active: an update timer runs the safety
layer (rt_ros.nodes.safety) at `update_rate_hz` and sends what it allows to the backend. Every
transition out of active, and every exit, stops the backend first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped, Vector3
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleState, Node, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from std_msgs.msg import Bool, Float64, String

from rt_ros.nodes.backends import BackendError, RobotBackend, backend_class, backend_names
from rt_ros.nodes.commands import ArmCommand, BaseCommand, TwistCommand, Vec3
from rt_ros.nodes.qos import COMMAND_QOS, STATUS_QOS
from rt_ros.nodes.safety import (
    MotionState,
    RejectReason,
    ReleaseResult,
    SafeOutput,
    SafetyLayer,
    SafetyLimits,
)
from rt_ros.nodes.stamps import stamp_seconds
from rt_ros.nodes.stop_signals import ignore_stop_signals, stop_requested_by_signals
from rt_ros.runtime.errors import ConfigError

NODE_NAME = "driver_node"
# How often main() wakes to notice SIGINT/SIGTERM when no timer wakes it sooner.
SPIN_PERIOD_S = 0.1
# Repeated warnings about rejected commands are logged at most this often.
LOG_THROTTLE_S = 1.0


def _range(low: float, high: float) -> list[FloatingPointRange]:
    return [FloatingPointRange(from_value=low, to_value=high, step=0.0)]


# name -> (description, floating-point range or None); defaults come from SafetyLimits.
LIMIT_PARAMETERS: dict[str, tuple[str, list[FloatingPointRange] | None]] = {
    "max_linear_speed_mps": (
        "arm end-effector linear speed limit per axis x, y, z (m/s, arm base frame); "
        "0 forbids an axis",
        None,
    ),
    "max_angular_speed_rps": ("arm end-effector angular speed limit per axis (rad/s)", None),
    "max_linear_accel_mps2": ("arm linear acceleration limit per axis (m/s^2)", None),
    "max_angular_accel_rps2": ("arm angular acceleration limit per axis (rad/s^2)", None),
    "max_base_linear_speed_mps": (
        "base linear speed limit per axis x, y, z (m/s); a differential drive: [v, 0, 0]",
        None,
    ),
    "max_base_angular_speed_rps": (
        "base angular speed limit per axis (rad/s); a differential drive: [0, 0, w]",
        None,
    ),
    "max_base_linear_accel_mps2": ("base linear acceleration limit per axis (m/s^2)", None),
    "max_base_angular_accel_rps2": ("base angular acceleration limit per axis (rad/s^2)", None),
    "gripper_command_min": ("lowest gripper command sent; lower commands are clamped", None),
    "gripper_command_max": ("highest gripper command sent; higher commands are clamped", None),
    "workspace_min_m": (
        "end-effector box lower corner x, y, z (m, arm base frame); enforced when the "
        "backend reports the end-effector pose",
        None,
    ),
    "workspace_max_m": ("end-effector box upper corner x, y, z (m, arm base frame)", None),
    "command_timeout_s": (
        "a command expires this long after its stamp; then motion stops, and older commands "
        "are rejected on arrival",
        _range(0.01, 10.0),
    ),
    "max_future_stamp_s": (
        "commands stamped further ahead of the node clock than this are rejected",
        _range(0.0, 1.0),
    ),
}


@dataclass(frozen=True)
class DriverSettings:
    """Everything on_configure reads, validated; field names are parameter names."""

    backend: str
    update_rate_hz: float
    diagnostics_rate_hz: float
    limits: SafetyLimits

    def __post_init__(self) -> None:
        for name in ("update_rate_hz", "diagnostics_rate_hz"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def _vec3(vector: Vector3) -> Vec3:
    return (vector.x, vector.y, vector.z)


def _format_vec3(values: Vec3) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


class DriverNode(Node):
    """Lifecycle node between the policy and the robot; see the module docstring."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        # Parameter values from overrides that rclpy refused (type or range): reported by
        # on_configure, forgotten once the parameter is set again.
        self._parameter_errors: dict[str, str] = {}
        self._declare_parameters()
        self.add_post_set_parameters_callback(self._forget_parameter_errors)
        self._settings: DriverSettings | None = None
        self._safety: SafetyLayer | None = None
        self._backend: RobotBackend | None = None
        # What on_configure created (rclpy.Node keeps its own _subscriptions, _publishers, ...).
        self._driver_subscriptions: list[Subscription] = []
        self._driver_publishers: list[Publisher] = []
        self._driver_timers: list[Timer] = []
        self._fault: str | None = None
        self._backend_errors = 0
        self._sent_arm = ArmCommand()
        self._sent_base = BaseCommand()
        self._sent_gripper: float | None = None

    # --- parameters ----------------------------------------------------------------------------

    def _declare_parameters(self) -> None:
        self._declare(
            "autostart",
            True,
            "configure and activate at start-up. Machines with only the PyPI ROS wheels have no "
            "lifecycle manager or ros2 CLI to do it; set false under a lifecycle manager",
        )
        self._declare(
            "backend",
            "ros_topics",
            f"robot backend: one of {backend_names()} ('sim' is reserved and not available yet)",
        )
        self._declare(
            "update_rate_hz", 50.0, "safety layer and backend update rate", _range(1.0, 1000.0)
        )
        self._declare(
            "diagnostics_rate_hz", 1.0, "rate of the /diagnostics status", _range(0.1, 100.0)
        )
        defaults = SafetyLimits()
        for name, (description, float_range) in LIMIT_PARAMETERS.items():
            default = getattr(defaults, name)
            if isinstance(default, tuple):
                default = list(default)
            self._declare(name, default, description, float_range)

    def _declare(
        self,
        name: str,
        default: Any,
        description: str,
        float_range: list[FloatingPointRange] | None = None,
    ) -> None:
        descriptor = ParameterDescriptor(description=description)
        if float_range:
            descriptor.floating_point_range = float_range
        try:
            self.declare_parameter(name, default, descriptor)
        except ParameterException as err:
            typed = isinstance(err, InvalidParameterTypeException)
            hint = " (floating-point values need a decimal point: 1.0, not 1)" if typed else ""
            self._parameter_errors[name] = f"parameter {name}: {err}{hint}"
            self.declare_parameter(name, default, descriptor, ignore_override=True)

    def _forget_parameter_errors(self, parameters: list[Parameter]) -> None:
        for parameter in parameters:
            self._parameter_errors.pop(parameter.name, None)

    def _read_settings(self) -> DriverSettings:
        if self._parameter_errors:
            raise ConfigError("; ".join(self._parameter_errors.values()))
        value = self._parameter_value
        limits = SafetyLimits(**{name: value(name) for name in LIMIT_PARAMETERS})
        return DriverSettings(
            backend=value("backend"),
            update_rate_hz=value("update_rate_hz"),
            diagnostics_rate_hz=value("diagnostics_rate_hz"),
            limits=limits,
        )

    def _parameter_value(self, name: str) -> Any:
        return self.get_parameter(name).value

    @property
    def autostart(self) -> bool:
        return bool(self._parameter_value("autostart"))

    def command_counts(self) -> dict[str, int]:
        """The safety layer's counters (accepted, clamped, rejected_<reason>, ...); empty
        before the first configure."""
        return {} if self._safety is None else self._safety.counts()

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def backend(self) -> RobotBackend | None:
        """The connected backend while configured (the demo reads the sim world through it)."""
        return self._backend

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        backend: RobotBackend | None = None
        try:
            settings = self._read_settings()
            cls = backend_class(settings.backend)
            cls.declare_parameters(self)
            backend = cls()
            backend.connect(self)
        except (ConfigError, ParameterException) as err:
            self.get_logger().error(f"configure failed: {err}")
            if backend is not None:
                backend.disconnect()
            return TransitionCallbackReturn.FAILURE
        previous = self._safety
        self._settings, self._backend = settings, backend
        self._safety = SafetyLayer(settings.limits)
        if previous is not None and previous.estop_latched:
            # An e-stop survives cleanup and configure; only estop/release clears it.
            self._safety.engage_estop()
            if not previous.estop_asserted:
                self._safety.deassert_estop()
        self._create_entities(settings)
        self.get_logger().info(
            f"configured: backend {backend.name}, update {settings.update_rate_hz:g} Hz, "
            f"command timeout {settings.limits.command_timeout_s:g} s"
        )
        return TransitionCallbackReturn.SUCCESS

    def _create_entities(self, settings: DriverSettings) -> None:
        sub, pub = self.create_subscription, self.create_publisher
        self._driver_subscriptions = [
            sub(TwistStamped, "cmd/arm", self._on_arm, COMMAND_QOS),
            sub(TwistStamped, "cmd/base", self._on_base, COMMAND_QOS),
            sub(Float64, "cmd/gripper", self._on_gripper, COMMAND_QOS),
            sub(String, "cmd/mode", self._on_mode, COMMAND_QOS),
            sub(Bool, "estop", self._on_estop, COMMAND_QOS),
            sub(Bool, "estop/release", self._on_estop_release, COMMAND_QOS),
        ]
        self._arm_pub = pub(TwistStamped, "driver/commanded/arm", COMMAND_QOS)
        self._base_pub = pub(TwistStamped, "driver/commanded/base", COMMAND_QOS)
        self._gripper_pub = pub(Float64, "driver/commanded/gripper", COMMAND_QOS)
        self._diagnostics_pub = pub(DiagnosticArray, "/diagnostics", STATUS_QOS)
        self._driver_publishers = [self._arm_pub, self._base_pub, self._gripper_pub]
        self._driver_publishers.append(self._diagnostics_pub)
        self._driver_timers = [
            self.create_timer(1.0 / settings.update_rate_hz, self._update),
            self.create_timer(1.0 / settings.diagnostics_rate_hz, self._publish_diagnostics),
        ]

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._fault = None
        self._safety.enable(self._now_s())
        self.get_logger().info(
            f"active: commands on cmd/arm, cmd/base, cmd/gripper, cmd/mode -> backend "
            f"{self._backend.name}"
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._safety.disable()
        self._update()  # sends the stop now, not at the next tick
        self.get_logger().info("inactive: motion stopped")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f"error during a transition from {state.label}: stopping")
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _teardown(self) -> None:
        """Stop the robot, then release the backend and everything on_configure created."""
        if self._safety is not None:
            self._safety.disable()
        if self._backend is not None:
            try:
                self._backend.stop()
            except BackendError as err:
                self.get_logger().error(f"backend {self._backend.name} failed to stop: {err}")
            self._backend.disconnect()
            self._backend = None
        for timer in self._driver_timers:
            self.destroy_timer(timer)
        for subscription in self._driver_subscriptions:
            self.destroy_subscription(subscription)
        for publisher in self._driver_publishers:
            self.destroy_publisher(publisher)
        self._driver_timers, self._driver_subscriptions, self._driver_publishers = [], [], []

    def configure_and_activate(self) -> bool:
        """What `autostart` does: configure then activate; False (already logged) on failure."""
        success = TransitionCallbackReturn.SUCCESS
        return self.trigger_configure() == success and self.trigger_activate() == success

    # --- incoming commands ---------------------------------------------------------------------

    def _on_arm(self, msg: TwistStamped) -> None:
        self._submit_twist("arm", ArmCommand, self._safety.submit_arm, msg)

    def _on_base(self, msg: TwistStamped) -> None:
        self._submit_twist("base", BaseCommand, self._safety.submit_base, msg)

    def _submit_twist(
        self,
        kind: str,
        command_type: type[TwistCommand],
        submit: Callable[[Any, float], RejectReason | None],
        msg: TwistStamped,
    ) -> None:
        now_s, stamp_s = self._now_s(), stamp_seconds(msg.header.stamp)
        command = command_type(_vec3(msg.twist.linear), _vec3(msg.twist.angular), stamp_s)
        reason = submit(command, now_s)
        if reason is not None:
            self.get_logger().warning(
                f"rejected {kind} command: {reason.value} (stamp age {now_s - stamp_s:.3f} s)",
                throttle_duration_sec=LOG_THROTTLE_S,
            )

    def _on_gripper(self, msg: Float64) -> None:
        reason = self._safety.submit_gripper(msg.data, self._now_s())
        if reason is not None:
            self.get_logger().warning(
                f"rejected gripper command {msg.data!r}: {reason.value}",
                throttle_duration_sec=LOG_THROTTLE_S,
            )

    def _on_mode(self, msg: String) -> None:
        before = self._safety.mode
        reason = self._safety.set_mode(msg.data)
        if reason is not None:
            self.get_logger().warning(
                f"rejected mode {msg.data!r}: expected arm, base or terminate",
                throttle_duration_sec=LOG_THROTTLE_S,
            )
        elif self._safety.mode is not before:
            self.get_logger().info(f"mode {msg.data}")
            self._update()  # terminate stops now

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            if not self._safety.estop_asserted:
                self.get_logger().error("E-STOP engaged: motion stopped and latched")
            self._safety.engage_estop()
            self._update()  # stop now, not at the next tick
        elif self._safety.estop_asserted:
            self._safety.deassert_estop()
            self.get_logger().warning(
                "e-stop no longer asserted; the latch holds until True on estop/release"
            )

    def _on_estop_release(self, msg: Bool) -> None:
        if not msg.data:
            return
        result = self._safety.release_estop()
        if result is ReleaseResult.RELEASED:
            self.get_logger().warning("e-stop released on estop/release; new commands will move")
        elif result is ReleaseResult.STILL_ASSERTED:
            self.get_logger().error("e-stop release refused: estop is still asserted (True)")
        else:
            self.get_logger().info("e-stop release ignored: no e-stop is latched")

    # --- update tick ---------------------------------------------------------------------------

    def _update(self) -> None:
        """Run the safety layer once and send what it allows."""
        if self._backend is None:
            return
        now_s = self._now_s()
        output = self._safety.update(now_s, self._backend.read_state().ee_position_m)
        if output is None:
            return
        try:
            if output.is_stop:
                self._backend.stop()
            else:
                self._backend.apply(output.arm, output.base, output.gripper)
        except BackendError as err:
            self._on_backend_error(err)
            return
        self._publish_commanded(output)

    def _on_backend_error(self, err: BackendError) -> None:
        """The backend cannot be trusted any more: stop, refuse motion until re-activated."""
        self._backend_errors += 1
        self._fault = str(err)
        self._safety.disable()
        self.get_logger().error(
            f"backend {self._backend.name} failed: {err}; motion disabled until re-activated",
            throttle_duration_sec=LOG_THROTTLE_S,
        )
        try:
            self._backend.stop()
        except BackendError as stop_err:
            self.get_logger().error(f"backend stop failed too: {stop_err}")

    def _publish_commanded(self, output: SafeOutput) -> None:
        stamp = self.get_clock().now().to_msg()
        for command, publisher, frame_id in (
            (output.arm, self._arm_pub, self._backend.arm_frame_id),
            (output.base, self._base_pub, self._backend.base_frame_id),
        ):
            if command is None:
                continue
            msg = TwistStamped()
            msg.header.stamp, msg.header.frame_id = stamp, frame_id
            msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = command.linear_mps
            msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = command.angular_rps
            publisher.publish(msg)
        if output.arm is not None:
            self._sent_arm = output.arm
        if output.base is not None:
            self._sent_base = output.base
        if output.gripper is not None:
            self._sent_gripper = output.gripper
            self._gripper_pub.publish(Float64(data=output.gripper))

    # --- diagnostics ---------------------------------------------------------------------------

    def _publish_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status.append(self._diagnostic_status(self._now_s()))
        self._diagnostics_pub.publish(msg)

    def _diagnostic_status(self, now_s: float) -> DiagnosticStatus:
        safety = self._safety
        state = safety.state(now_s)
        age_s = safety.last_command_age_s(now_s)
        level, message = (
            DiagnosticStatus.OK,
            {
                MotionState.ACTIVE: "commanding",
                MotionState.WAITING: "waiting for commands",
                MotionState.TERMINATED: "episode terminated: stopped until a new mode",
            }.get(state, state.value),
        )
        if self._fault is not None:
            level, message = DiagnosticStatus.ERROR, f"backend failed: {self._fault}"
        elif state is MotionState.ESTOPPED:
            still = "still asserted" if safety.estop_asserted else "release with estop/release"
            level, message = DiagnosticStatus.ERROR, f"e-stop latched ({still})"
        elif state is MotionState.TIMED_OUT:
            level, message = DiagnosticStatus.WARN, "command timed out: motion stopped"
        elif state is MotionState.INACTIVE:
            level, message = DiagnosticStatus.WARN, "inactive: no motion"
        mode = safety.mode
        values = {
            "state": state.value,
            "backend": self._backend.name if self._backend else "",
            "mode": mode.value if mode else "",
            "estop_latched": str(safety.estop_latched).lower(),
            "estop_asserted": str(safety.estop_asserted).lower(),
            "last_command_age_s": "" if age_s is None else f"{age_s:.3f}",
            **{name: str(count) for name, count in safety.counts().items()},
            "backend_errors": str(self._backend_errors),
            "sent_arm_linear_mps": _format_vec3(self._sent_arm.linear_mps),
            "sent_arm_angular_rps": _format_vec3(self._sent_arm.angular_rps),
            "sent_base_linear_mps": _format_vec3(self._sent_base.linear_mps),
            "sent_base_angular_rps": _format_vec3(self._sent_base.angular_rps),
            "sent_gripper": "" if self._sent_gripper is None else f"{self._sent_gripper:.4f}",
            "robot_state_age_s": self._robot_state_age(now_s),
            "command_timeout_s": f"{safety.limits.command_timeout_s:g}",
            "update_rate_hz": f"{self._settings.update_rate_hz:g}",
            **(self._backend.diagnostic_values() if self._backend else {}),
        }
        return DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: driver",
            message=message,
            hardware_id=values["backend"],
            values=[KeyValue(key=key, value=value) for key, value in values.items()],
        )

    def _robot_state_age(self, now_s: float) -> str:
        stamp_s = self._backend.read_state().stamp_s if self._backend else None
        return "" if stamp_s is None else f"{now_s - stamp_s:.3f}"

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


def main(args: list[str] | None = None) -> int:
    """Console script: run the driver until SIGINT/SIGTERM (however many arrive), then stop the
    robot and exit 0."""
    # rclpy's own handlers would shut the context down before the backend could send its stop,
    # so SIGINT/SIGTERM only ask the spin loop to end.
    stop_requested = stop_requested_by_signals()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = DriverNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    exit_code = 0
    try:
        if node.autostart and not node.configure_and_activate():
            exit_code = 1
        while exit_code == 0 and not stop_requested.is_set():
            executor.spin_once(timeout_sec=SPIN_PERIOD_S)
    except ExternalShutdownException:
        pass
    finally:
        if rclpy.ok():
            node.trigger_shutdown()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        ignore_stop_signals()
    return exit_code
