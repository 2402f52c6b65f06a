"""The safety layer every driver backend goes through. Pure logic with explicit time, no rclpy.

Incoming commands are admitted or rejected (non-finite, during e-stop, while inactive, after
terminate, stale or future stamp), clamped per axis and held until they expire. Each update tick
rate-limits the held targets by acceleration against what was sent last, keeps the end effector
from moving further out of its workspace box, and stops motion when nothing fresh is held.
Stops (timeout, e-stop, terminate, deactivation) are immediate: acceleration limits shape motion
commands only, never a stop.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, fields
from enum import Enum

from rt_ros.nodes.commands import ZERO3, ArmCommand, BaseCommand, Mode, TwistCommand, Vec3
from rt_ros.runtime.errors import ConfigError

Six = tuple[float, float, float, float, float, float]
ZERO6: Six = (0.0,) * 6


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _vec3(name: str, value: object) -> Vec3:
    items = tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else ()
    if len(items) != 3:
        raise ConfigError(f"{name} must be 3 numbers (x, y, z), got {value!r}")
    x, y, z = (_number(f"{name}[{i}]", v) for i, v in enumerate(items))
    return (x, y, z)


@dataclass(frozen=True)
class SafetyLimits:
    """Limits the driver enforces; field names are the driver's parameter names."""

    # Arm end-effector twist in the arm base frame, per axis (x, y, z); 0 forbids that axis.
    max_linear_speed_mps: Vec3 = (0.25, 0.25, 0.25)
    max_angular_speed_rps: Vec3 = (1.0, 1.0, 1.0)
    max_linear_accel_mps2: float = 1.0
    max_angular_accel_rps2: float = 4.0
    # Mobile base twist, per axis; a differential drive allows only linear x and angular z.
    max_base_linear_speed_mps: Vec3 = (0.5, 0.0, 0.0)
    max_base_angular_speed_rps: Vec3 = (0.0, 0.0, 1.0)
    max_base_linear_accel_mps2: float = 0.5
    max_base_angular_accel_rps2: float = 2.0
    # Gripper closedness command range sent to the gripper controller.
    gripper_command_min: float = -1.0
    gripper_command_max: float = 1.0
    # End-effector box in the arm base frame; enforced when the backend reports the pose.
    workspace_min_m: Vec3 = (-0.9, -0.9, -0.1)
    workspace_max_m: Vec3 = (0.9, 0.9, 1.2)
    # A command expires this long after its stamp (or its arrival, if earlier); then motion stops.
    command_timeout_s: float = 0.5
    # Clock skew allowed for stamps ahead of the node clock.
    max_future_stamp_s: float = 0.1
    # Longest tick the acceleration limit credits, so a stalled timer never allows a jump.
    max_tick_s: float = 0.1

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            checked = _vec3(field.name, value) if field.name in _VEC3_FIELDS else None
            object.__setattr__(self, field.name, checked or _number(field.name, value))
        for name in _SPEED_FIELDS:
            if any(v < 0.0 for v in getattr(self, name)):
                raise ConfigError(
                    f"{name} must be >= 0 on every axis, got {getattr(self, name)!r}"
                )
        for name in _POSITIVE_FIELDS:
            if getattr(self, name) <= 0.0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.max_future_stamp_s < 0.0:
            raise ConfigError(f"max_future_stamp_s must be >= 0, got {self.max_future_stamp_s!r}")
        if not self.gripper_command_min < self.gripper_command_max:
            raise ConfigError(
                f"gripper_command_min ({self.gripper_command_min!r}) must be below "
                f"gripper_command_max ({self.gripper_command_max!r})"
            )
        corners = zip(self.workspace_min_m, self.workspace_max_m, strict=True)
        for axis, (low, high) in enumerate(corners):
            if not low < high:
                raise ConfigError(
                    f"workspace_min_m[{axis}] ({low!r}) must be below "
                    f"workspace_max_m[{axis}] ({high!r})"
                )


_SPEED_FIELDS = (
    "max_linear_speed_mps",
    "max_angular_speed_rps",
    "max_base_linear_speed_mps",
    "max_base_angular_speed_rps",
)
_VEC3_FIELDS = (*_SPEED_FIELDS, "workspace_min_m", "workspace_max_m")
_POSITIVE_FIELDS = (
    "max_linear_accel_mps2",
    "max_angular_accel_rps2",
    "max_base_linear_accel_mps2",
    "max_base_angular_accel_rps2",
    "command_timeout_s",
    "max_tick_s",
)


class RejectReason(str, Enum):
    """Why an incoming command was not applied; each has a counter in diagnostics."""

    NON_FINITE = "non_finite"
    DURING_ESTOP = "during_estop"
    INACTIVE = "inactive"
    TERMINATED = "terminated"
    STALE = "stale"
    FUTURE_STAMP = "future_stamp"
    INVALID_MODE = "invalid_mode"


class MotionState(str, Enum):
    """What the driver is doing, as reported in diagnostics."""

    INACTIVE = "inactive"
    ESTOPPED = "estopped"
    TERMINATED = "terminated"
    WAITING = "waiting"
    ACTIVE = "active"
    TIMED_OUT = "timed_out"


class ReleaseResult(str, Enum):
    RELEASED = "released"
    STILL_ASSERTED = "still_asserted"
    NOT_LATCHED = "not_latched"


@dataclass(frozen=True)
class SafeOutput:
    """What to send this tick. A channel set to None has nothing new to send.

    `is_stop` marks the tick on which motion must stop: every twist is zero and the backend's
    `stop()` is the call to make.
    """

    arm: ArmCommand | None
    base: BaseCommand | None
    gripper: float | None
    is_stop: bool = False


class _Channel:
    """One twist stream (arm or base): its held target, expiry and what was sent last."""

    def __init__(self, kind: type[TwistCommand], max_speed: Six, max_step_per_s: Six) -> None:
        self.kind = kind
        self.max_speed = max_speed
        self.max_step_per_s = max_step_per_s
        self.target: Six | None = None
        self.expiry_s = -math.inf
        self.sent: Six = ZERO6
        self.moving = False

    def clamp(self, values: tuple[float, ...]) -> tuple[Six, bool]:
        clamped = tuple(max(-s, min(s, v)) for v, s in zip(values, self.max_speed, strict=True))
        return clamped, clamped != values  # type: ignore[return-value]

    def is_fresh(self, now_s: float) -> bool:
        return self.target is not None and now_s <= self.expiry_s

    def clear(self) -> None:
        self.target = None
        self.expiry_s = -math.inf
        self.sent = ZERO6
        self.moving = False

    def approach(self, target: Six, dt_s: float) -> Six:
        """Move from what was sent last towards target, no faster than the acceleration limits."""
        stepped = []
        for prev, goal, rate in zip(self.sent, target, self.max_step_per_s, strict=True):
            step = rate * dt_s
            stepped.append(prev + max(-step, min(step, goal - prev)))
        return tuple(stepped)  # type: ignore[return-value]


class SafetyLayer:
    """Admits, clamps, rate-limits and times out commands; latches e-stop. Time is `now_s`."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self._arm = _Channel(
            ArmCommand,
            (*limits.max_linear_speed_mps, *limits.max_angular_speed_rps),
            (limits.max_linear_accel_mps2,) * 3 + (limits.max_angular_accel_rps2,) * 3,
        )
        self._base = _Channel(
            BaseCommand,
            (*limits.max_base_linear_speed_mps, *limits.max_base_angular_speed_rps),
            (limits.max_base_linear_accel_mps2,) * 3 + (limits.max_base_angular_accel_rps2,) * 3,
        )
        self._enabled = False
        self._estop_latched = False
        self._estop_asserted = False
        self._terminated = False
        self._mode: Mode | None = None  # None until the policy names one: arm and base both pass
        self._stop_pending = False
        self._gripper_pending: float | None = None
        self._had_command = False
        self._last_tick_s: float | None = None
        self._last_command_s: float | None = None
        self._counts = dict.fromkeys(
            ["accepted", "clamped", "timeouts", "workspace_limited"]
            + [f"rejected_{reason.value}" for reason in RejectReason],
            0,
        )
        self.last_output: SafeOutput | None = None

    # --- state -------------------------------------------------------------------------------

    @property
    def estop_latched(self) -> bool:
        return self._estop_latched

    @property
    def estop_asserted(self) -> bool:
        return self._estop_asserted

    @property
    def mode(self) -> Mode | None:
        return Mode.TERMINATE if self._terminated else self._mode

    def counts(self) -> dict[str, int]:
        """Counters by name: accepted, clamped, timeouts, workspace_limited, rejected_<reason>."""
        return dict(self._counts)

    def state(self, now_s: float) -> MotionState:
        if self._estop_latched:
            return MotionState.ESTOPPED
        if not self._enabled:
            return MotionState.INACTIVE
        if self._terminated:
            return MotionState.TERMINATED
        if self._arm.is_fresh(now_s) or self._base.is_fresh(now_s):
            return MotionState.ACTIVE
        return MotionState.TIMED_OUT if self._had_command else MotionState.WAITING

    def last_command_age_s(self, now_s: float) -> float | None:
        """Seconds since the last accepted arm or base command arrived; None if none has."""
        return None if self._last_command_s is None else now_s - self._last_command_s

    # --- lifecycle, e-stop, mode -------------------------------------------------------------

    def enable(self, now_s: float) -> None:
        """Start accepting commands (the node became active); nothing old is resumed."""
        self._enabled = True
        self._clear_motion()
        self._had_command = False
        self._last_tick_s = now_s

    def disable(self) -> None:
        """Stop motion and refuse commands until enabled again."""
        self._halt()
        self._enabled = False

    def engage_estop(self) -> None:
        """Latch the e-stop: motion stops at the next update and stays stopped until released."""
        self._estop_latched = True
        self._estop_asserted = True
        self._halt()

    def deassert_estop(self) -> None:
        """The e-stop source stopped asserting; the latch holds until `release_estop`."""
        self._estop_asserted = False

    def release_estop(self) -> ReleaseResult:
        """Release the latch, unless an e-stop is still being asserted."""
        if self._estop_asserted:
            return ReleaseResult.STILL_ASSERTED
        if not self._estop_latched:
            return ReleaseResult.NOT_LATCHED
        self._estop_latched = False
        self._had_command = False
        return ReleaseResult.RELEASED

    def set_mode(self, text: str) -> RejectReason | None:
        """`terminate` stops everything until a new non-terminate mode arrives."""
        try:
            mode = Mode(text)
        except ValueError:
            return self._reject(RejectReason.INVALID_MODE)
        if mode is Mode.TERMINATE:
            if not self._terminated:
                self._terminated = True
                self._had_command = False
                self._halt()
        else:
            self._terminated = False
            self._mode = mode
        return None

    # --- incoming commands -------------------------------------------------------------------

    def submit_arm(self, command: ArmCommand, now_s: float) -> RejectReason | None:
        return self._submit_twist(self._arm, command, now_s)

    def submit_base(self, command: BaseCommand, now_s: float) -> RejectReason | None:
        return self._submit_twist(self._base, command, now_s)

    def submit_gripper(self, value: float, now_s: float) -> RejectReason | None:
        """Gripper commands carry no stamp; the newest admitted one is sent once."""
        reason = self._refusal(math.isfinite(value))
        if reason is not None:
            return self._reject(reason)
        low, high = self.limits.gripper_command_min, self.limits.gripper_command_max
        clamped = max(low, min(high, value))
        self._counts["clamped"] += clamped != value
        self._counts["accepted"] += 1
        self._gripper_pending = clamped
        return None

    def _submit_twist(
        self, channel: _Channel, command: TwistCommand, now_s: float
    ) -> RejectReason | None:
        reason = self._refusal(command.is_finite())
        if reason is None:
            age_s = now_s - command.stamp_s
            if age_s > self.limits.command_timeout_s:
                reason = RejectReason.STALE
            elif age_s < -self.limits.max_future_stamp_s:
                reason = RejectReason.FUTURE_STAMP
        if reason is not None:
            return self._reject(reason)
        target, was_clamped = channel.clamp(command.values())
        self._counts["clamped"] += was_clamped
        self._counts["accepted"] += 1
        channel.target = target
        channel.expiry_s = min(command.stamp_s, now_s) + self.limits.command_timeout_s
        self._had_command = True
        self._last_command_s = now_s
        return None

    def _refusal(self, finite: bool) -> RejectReason | None:
        if not finite:
            return RejectReason.NON_FINITE
        if self._estop_latched:
            return RejectReason.DURING_ESTOP
        if not self._enabled:
            return RejectReason.INACTIVE
        if self._terminated:
            return RejectReason.TERMINATED
        return None

    def _reject(self, reason: RejectReason) -> RejectReason:
        self._counts[f"rejected_{reason.value}"] += 1
        return reason

    # --- update tick -------------------------------------------------------------------------

    def update(self, now_s: float, ee_position_m: Vec3 | None = None) -> SafeOutput | None:
        """One control tick: what to send now, or None when there is nothing to send."""
        dt_s = self._tick_dt(now_s)
        if self._estop_latched or self._terminated or not self._enabled:
            output = self._stop_output(now_s) if self._stop_pending else None
            self._stop_pending = False
            return self._remember(output)
        arm_fresh, base_fresh = self._arm.is_fresh(now_s), self._base.is_fresh(now_s)
        arm = self._step(self._arm, now_s, dt_s, allowed=self._mode is not Mode.BASE)
        base = self._step(self._base, now_s, dt_s, allowed=self._mode is not Mode.ARM)
        if not (arm_fresh or base_fresh) and (arm is not None or base is not None):
            return self._remember(self._stop_output(now_s))
        if arm is not None and ee_position_m is not None:
            arm = self._keep_inside_workspace(arm, ee_position_m)
        gripper, self._gripper_pending = self._gripper_pending, None
        if arm is None and base is None and gripper is None:
            return None
        return self._remember(
            SafeOutput(
                arm=None if arm is None else ArmCommand(arm[:3], arm[3:], now_s),
                base=None if base is None else BaseCommand(base[:3], base[3:], now_s),
                gripper=gripper,
            )
        )

    def _step(self, channel: _Channel, now_s: float, dt_s: float, allowed: bool) -> Six | None:
        """The channel's next values: rate-limited while fresh, zero once on expiry, else None."""
        if channel.is_fresh(now_s):
            assert channel.target is not None
            channel.sent = channel.approach(channel.target if allowed else ZERO6, dt_s)
            channel.moving = True
            return channel.sent
        if channel.target is not None:
            self._counts["timeouts"] += 1
            channel.target = None
        if channel.moving:
            channel.clear()
            return ZERO6
        return None

    def _keep_inside_workspace(self, arm: Six, ee_position_m: Vec3) -> Six:
        """Zero linear components that push the end effector further out of the box."""
        linear = list(arm[:3])
        low, high = self.limits.workspace_min_m, self.limits.workspace_max_m
        pose_known = all(math.isfinite(p) for p in ee_position_m)
        for axis, position in enumerate(ee_position_m):
            if (
                not pose_known  # an unknown pose allows no linear motion
                or (position >= high[axis] and linear[axis] > 0.0)
                or (position <= low[axis] and linear[axis] < 0.0)
            ):
                linear[axis] = 0.0
        if linear == list(arm[:3]):
            return arm
        self._counts["workspace_limited"] += 1
        self._arm.sent = (*linear, *arm[3:])  # type: ignore[assignment]
        return self._arm.sent

    def _tick_dt(self, now_s: float) -> float:
        last, self._last_tick_s = self._last_tick_s, now_s
        if last is None:
            return 0.0
        return max(0.0, min(self.limits.max_tick_s, now_s - last))

    def _halt(self) -> None:
        self._clear_motion()
        self._stop_pending = True

    def _clear_motion(self) -> None:
        self._arm.clear()
        self._base.clear()
        self._gripper_pending = None

    def _stop_output(self, now_s: float) -> SafeOutput:
        self._arm.clear()
        self._base.clear()
        return SafeOutput(
            arm=ArmCommand(ZERO3, ZERO3, now_s),
            base=BaseCommand(ZERO3, ZERO3, now_s),
            gripper=None,
            is_stop=True,
        )

    def _remember(self, output: SafeOutput | None) -> SafeOutput | None:
        if output is not None:
            self.last_output = output
        return output
