"""The driver's safety layer as pure logic: explicit times, no ROS."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt_ros.nodes.commands import ArmCommand, BaseCommand, Mode
from rt_ros.nodes.safety import (
    MotionState,
    RejectReason,
    ReleaseResult,
    SafeOutput,
    SafetyLayer,
    SafetyLimits,
)
from rt_ros.runtime.errors import ConfigError

TICK_S = 0.02
# Acceleration high enough that any target is reached in one tick, for tests about other things.
INSTANT = {
    "max_linear_accel_mps2": 1e6,
    "max_angular_accel_rps2": 1e6,
    "max_base_linear_accel_mps2": 1e6,
    "max_base_angular_accel_rps2": 1e6,
}


def make_layer(now_s: float = 0.0, **overrides: object) -> SafetyLayer:
    layer = SafetyLayer(SafetyLimits(**{**INSTANT, **overrides}))
    layer.enable(now_s)
    return layer


def arm(linear=(0.0, 0.0, 0.0), angular=(0.0, 0.0, 0.0), stamp_s=0.0) -> ArmCommand:
    return ArmCommand(tuple(linear), tuple(angular), stamp_s)


def base(linear=(0.0, 0.0, 0.0), angular=(0.0, 0.0, 0.0), stamp_s=0.0) -> BaseCommand:
    return BaseCommand(tuple(linear), tuple(angular), stamp_s)


def tick(layer: SafetyLayer, now_s: float, ee=None) -> SafeOutput | None:
    return layer.update(now_s, ee)


# --- limits -------------------------------------------------------------------------------------


def test_default_limits_are_valid_and_match_the_contract():
    limits = SafetyLimits()
    assert limits.command_timeout_s == 0.5
    assert isinstance(limits.max_linear_speed_mps, tuple)


def test_limits_convert_lists_to_float_tuples():
    limits = SafetyLimits(max_linear_speed_mps=[1, 2, 3], command_timeout_s=1)
    assert limits.max_linear_speed_mps == (1.0, 2.0, 3.0)
    assert isinstance(limits.command_timeout_s, float)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("max_linear_speed_mps", (0.1, -0.1, 0.1), "max_linear_speed_mps must be >= 0"),
        ("max_angular_speed_rps", (1.0, 1.0), "max_angular_speed_rps must be 3 numbers"),
        ("max_base_linear_speed_mps", (0.1, math.nan, 0.0), "max_base_linear_speed_mps[1]"),
        ("workspace_min_m", "abc", "workspace_min_m must be 3 numbers"),
        ("max_linear_accel_mps2", 0.0, "max_linear_accel_mps2 must be > 0"),
        ("max_base_angular_accel_rps2", -1.0, "max_base_angular_accel_rps2 must be > 0"),
        ("command_timeout_s", 0.0, "command_timeout_s must be > 0"),
        ("command_timeout_s", math.inf, "command_timeout_s must be a finite number"),
        ("command_timeout_s", True, "command_timeout_s must be a finite number"),
        ("max_future_stamp_s", -0.1, "max_future_stamp_s must be >= 0"),
        ("max_tick_s", 0.0, "max_tick_s must be > 0"),
        ("gripper_command_min", 1.0, "gripper_command_min (1.0) must be below"),
        ("workspace_max_m", (0.9, -0.9, 1.2), "workspace_min_m[1] (-0.9) must be below"),
    ],
)
def test_bad_limits_name_the_field_and_value(field, value, fragment):
    with pytest.raises(ConfigError) as raised:
        SafetyLimits(**{field: value})
    assert fragment in str(raised.value)


# --- clamps -------------------------------------------------------------------------------------


def test_arm_command_is_clamped_per_axis_and_counted():
    layer = make_layer(max_linear_speed_mps=(0.25, 0.1, 0.5), max_angular_speed_rps=(1, 1, 0.5))
    assert layer.submit_arm(arm((1.0, -1.0, 0.2), (0.5, -3.0, 3.0)), 0.0) is None
    out = tick(layer, TICK_S)
    assert out.arm.linear_mps == (0.25, -0.1, 0.2)
    assert out.arm.angular_rps == (0.5, -1.0, 0.5)
    assert layer.counts()["clamped"] == 1
    assert layer.counts()["accepted"] == 1


def test_command_inside_limits_is_not_counted_as_clamped():
    layer = make_layer()
    layer.submit_arm(arm((0.1, 0.0, -0.1)), 0.0)
    assert tick(layer, TICK_S).arm.linear_mps == (0.1, 0.0, -0.1)
    assert layer.counts()["clamped"] == 0


def test_base_axis_with_zero_limit_is_forbidden():
    layer = make_layer()  # default base: linear x and angular z only
    layer.submit_base(base((0.3, 0.4, 0.0), (0.2, 0.0, -2.0)), 0.0)
    out = tick(layer, TICK_S)
    assert out.base.linear_mps == (0.3, 0.0, 0.0)
    assert out.base.angular_rps == (0.0, 0.0, -1.0)
    assert out.arm is None


def test_gripper_is_clamped_to_its_range_and_sent_once():
    layer = make_layer(gripper_command_min=0.0, gripper_command_max=0.8)
    assert layer.submit_gripper(1.0, 0.0) is None
    out = tick(layer, TICK_S)
    assert out.gripper == 0.8
    assert out.arm is None
    assert out.base is None
    assert tick(layer, 2 * TICK_S) is None
    layer.submit_gripper(-0.5, 0.05)
    assert tick(layer, 3 * TICK_S).gripper == 0.0
    assert layer.counts()["clamped"] == 2


# --- acceleration limits ------------------------------------------------------------------------


def test_acceleration_limit_ramps_up_and_down():
    layer = make_layer(max_linear_accel_mps2=1.0, max_angular_accel_rps2=2.0)
    layer.submit_arm(arm((0.1, 0.0, -0.1), (0.0, 0.0, 1.0), stamp_s=0.0), 0.0)
    out = tick(layer, TICK_S)
    assert out.arm.linear_mps == pytest.approx((0.02, 0.0, -0.02))
    assert out.arm.angular_rps == pytest.approx((0.0, 0.0, 0.04))
    for step in range(2, 6):
        out = tick(layer, step * TICK_S)
    assert out.arm.linear_mps == pytest.approx((0.1, 0.0, -0.1))
    assert out.arm.angular_rps == pytest.approx((0.0, 0.0, 0.2))
    # A zero command from the policy is a command: it decelerates at the limit, not at once.
    layer.submit_arm(arm(stamp_s=0.1), 0.1)
    out = tick(layer, 6 * TICK_S)
    assert out.arm.linear_mps == pytest.approx((0.08, 0.0, -0.08))
    assert not out.is_stop


def test_acceleration_limit_uses_elapsed_time():
    layer = make_layer(max_base_linear_accel_mps2=0.5)
    layer.submit_base(base((0.5, 0.0, 0.0)), 0.0)
    assert tick(layer, 0.01).base.linear_mps[0] == pytest.approx(0.005)
    assert tick(layer, 0.05).base.linear_mps[0] == pytest.approx(0.025)


def test_a_stalled_tick_is_credited_at_most_max_tick_s():
    layer = make_layer(max_linear_accel_mps2=1.0, max_tick_s=0.05, command_timeout_s=5.0)
    layer.submit_arm(arm((0.25, 0.0, 0.0)), 0.0)
    assert tick(layer, 1.0).arm.linear_mps[0] == pytest.approx(0.05)


# --- workspace ----------------------------------------------------------------------------------


def test_workspace_blocks_outward_motion_and_allows_motion_back_inside():
    layer = make_layer(workspace_min_m=(0.0, -0.5, 0.1), workspace_max_m=(0.8, 0.5, 1.0))
    layer.submit_arm(arm((0.1, 0.1, -0.1), (0.0, 0.0, 0.3)), 0.0)
    out = tick(layer, TICK_S, ee=(0.8, 0.0, 0.05))  # at +x face, below the floor
    assert out.arm.linear_mps == (0.0, 0.1, 0.0)
    assert out.arm.angular_rps == (0.0, 0.0, 0.3)  # rotation in place is allowed
    assert layer.counts()["workspace_limited"] == 1
    layer.submit_arm(arm((-0.1, 0.1, 0.1)), 0.03)
    out = tick(layer, 2 * TICK_S, ee=(0.9, 0.0, 0.05))  # moving back inside on x and z
    assert out.arm.linear_mps == (-0.1, 0.1, 0.1)
    assert layer.counts()["workspace_limited"] == 1


def test_workspace_is_not_enforced_without_a_pose():
    layer = make_layer(workspace_max_m=(0.1, 0.1, 0.1))
    layer.submit_arm(arm((0.2, 0.0, 0.0)), 0.0)
    assert tick(layer, TICK_S, ee=None).arm.linear_mps == (0.2, 0.0, 0.0)


def test_non_finite_pose_allows_no_linear_motion():
    layer = make_layer()
    layer.submit_arm(arm((0.1, -0.1, 0.1), (0.1, 0.0, 0.0)), 0.0)
    out = tick(layer, TICK_S, ee=(0.3, math.nan, 0.3))
    assert out.arm.linear_mps == (0.0, 0.0, 0.0)
    assert out.arm.angular_rps == (0.1, 0.0, 0.0)


def test_workspace_zeroing_is_what_the_acceleration_limit_continues_from():
    layer = make_layer(max_linear_accel_mps2=1.0, workspace_max_m=(0.5, 0.9, 1.2))
    layer.submit_arm(arm((0.2, 0.0, 0.0)), 0.0)
    for step in range(1, 12):
        out = tick(layer, step * TICK_S, ee=(0.0, 0.0, 0.5))
    assert out.arm.linear_mps[0] == pytest.approx(0.2)
    assert tick(layer, 12 * TICK_S, ee=(0.5, 0.0, 0.5)).arm.linear_mps[0] == 0.0
    assert tick(layer, 13 * TICK_S, ee=(0.49, 0.0, 0.5)).arm.linear_mps[0] == pytest.approx(0.02)


# --- timeout and stamps -------------------------------------------------------------------------


def test_motion_stops_once_when_the_command_times_out():
    layer = make_layer()
    layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=1.0), 1.0)
    layer.submit_base(base((0.2, 0.0, 0.0), stamp_s=1.0), 1.0)
    assert tick(layer, 1.02).arm.linear_mps == (0.1, 0.0, 0.0)
    assert layer.state(1.3) is MotionState.ACTIVE
    assert tick(layer, 1.5).arm.linear_mps == (0.1, 0.0, 0.0)  # exactly the timeout: still held
    out = tick(layer, 1.52)
    assert out.is_stop
    assert out.arm.is_zero()
    assert out.base.is_zero()
    assert tick(layer, 1.54) is None
    assert layer.state(1.54) is MotionState.TIMED_OUT
    assert layer.counts()["timeouts"] == 2  # arm and base both expired
    assert layer.last_command_age_s(1.54) == pytest.approx(0.54)


def test_expiry_counts_from_the_stamp_not_the_arrival():
    layer = make_layer()
    layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=0.7), 1.0)  # computed from a 0.3 s old frame
    assert not tick(layer, 1.2).is_stop
    assert tick(layer, 1.21).is_stop


def test_a_fresh_command_keeps_motion_going():
    layer = make_layer()
    for step in range(60):
        now_s = step * TICK_S
        if step % 10 == 0:  # a 5 Hz policy
            layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=now_s - 0.1), now_s)
        out = tick(layer, now_s + TICK_S)
        assert out is not None
        assert not out.is_stop


def test_one_channel_expiring_zeroes_only_that_channel():
    layer = make_layer()
    layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=0.0), 0.0)
    tick(layer, 0.02)
    layer.submit_base(base((0.2, 0.0, 0.0), stamp_s=0.4), 0.4)
    out = tick(layer, 0.52)
    assert not out.is_stop
    assert out.arm.is_zero()
    assert out.base.linear_mps == (0.2, 0.0, 0.0)
    out = tick(layer, 0.54)
    assert out.arm is None
    assert out.base.linear_mps == (0.2, 0.0, 0.0)
    assert tick(layer, 0.92).is_stop


def test_stale_command_is_rejected_and_counted():
    layer = make_layer()
    assert layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=9.4), 10.0) is RejectReason.STALE
    assert layer.submit_base(base((0.1, 0.0, 0.0), stamp_s=0.0), 10.0) is RejectReason.STALE
    assert tick(layer, 10.02) is None
    assert layer.counts()["rejected_stale"] == 2
    assert layer.counts()["accepted"] == 0


def test_future_stamp_beyond_the_tolerance_is_rejected():
    layer = make_layer(max_future_stamp_s=0.1)
    assert layer.submit_arm(arm(stamp_s=10.05), 10.0) is None
    assert layer.submit_arm(arm(stamp_s=10.2), 10.0) is RejectReason.FUTURE_STAMP
    assert layer.counts()["rejected_future_stamp"] == 1


@pytest.mark.parametrize("index", range(6))
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_command_is_rejected_and_the_held_one_continues(index, bad):
    layer = make_layer()
    layer.submit_arm(arm((0.1, 0.0, 0.0)), 0.0)
    values = [0.0] * 6
    values[index] = bad
    rejected = arm(values[:3], values[3:], stamp_s=0.01)
    assert layer.submit_arm(rejected, 0.01) is RejectReason.NON_FINITE
    assert layer.submit_base(BaseCommand(*rejected.__dict__.values()), 0.01) is not None
    assert tick(layer, TICK_S).arm.linear_mps == (0.1, 0.0, 0.0)
    assert layer.counts()["rejected_non_finite"] == 2


def test_non_finite_gripper_is_rejected():
    layer = make_layer()
    assert layer.submit_gripper(math.nan, 0.0) is RejectReason.NON_FINITE
    assert tick(layer, TICK_S) is None
    assert layer.counts()["rejected_non_finite"] == 1


# --- e-stop -------------------------------------------------------------------------------------


def test_estop_latches_until_released_after_the_assertion_ends():
    layer = make_layer()
    layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=0.0), 0.0)
    assert not tick(layer, 0.02).is_stop
    layer.engage_estop()
    out = tick(layer, 0.04)
    assert out.is_stop
    assert out.arm.is_zero()
    assert layer.state(0.04) is MotionState.ESTOPPED
    # Commands during e-stop are refused, counted, and never sent.
    assert layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=0.05), 0.05) is RejectReason.DURING_ESTOP
    assert layer.submit_gripper(0.5, 0.05) is RejectReason.DURING_ESTOP
    assert tick(layer, 0.06) is None
    # Release is refused while the e-stop is asserted; False on the e-stop topic is not a release.
    assert layer.release_estop() is ReleaseResult.STILL_ASSERTED
    layer.deassert_estop()
    assert layer.estop_latched
    assert layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=0.07), 0.07) is RejectReason.DURING_ESTOP
    assert tick(layer, 0.08) is None
    assert layer.release_estop() is ReleaseResult.RELEASED
    assert not layer.estop_latched
    # Nothing held before the e-stop resumes; a new command does.
    assert tick(layer, 0.10) is None
    assert layer.state(0.10) is MotionState.WAITING
    layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=0.11), 0.11)
    assert tick(layer, 0.12).arm.linear_mps == (0.1, 0.0, 0.0)
    assert layer.counts()["rejected_during_estop"] == 3


def test_estop_stops_even_when_nothing_was_moving():
    layer = make_layer()
    layer.engage_estop()
    assert tick(layer, TICK_S).is_stop
    assert tick(layer, 2 * TICK_S) is None


def test_release_without_a_latch_says_so():
    layer = make_layer()
    assert layer.release_estop() is ReleaseResult.NOT_LATCHED


def test_estop_latches_while_inactive_too():
    layer = SafetyLayer(SafetyLimits())
    layer.engage_estop()
    layer.enable(1.0)
    assert layer.state(1.0) is MotionState.ESTOPPED
    assert layer.submit_arm(arm(stamp_s=1.0), 1.0) is RejectReason.DURING_ESTOP


# --- modes and lifecycle ------------------------------------------------------------------------


def test_terminate_stops_everything_until_a_new_mode():
    layer = make_layer()
    layer.submit_arm(arm((0.1, 0.0, 0.0)), 0.0)
    layer.submit_base(base((0.1, 0.0, 0.0)), 0.0)
    tick(layer, 0.02)
    assert layer.set_mode("terminate") is None
    assert tick(layer, 0.04).is_stop
    assert layer.state(0.04) is MotionState.TERMINATED
    assert layer.mode is Mode.TERMINATE
    assert layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=0.05), 0.05) is RejectReason.TERMINATED
    assert tick(layer, 0.06) is None
    layer.set_mode("arm")
    assert layer.mode is Mode.ARM
    layer.submit_arm(arm((0.1, 0.0, 0.0), stamp_s=0.07), 0.07)
    assert tick(layer, 0.08).arm.linear_mps == (0.1, 0.0, 0.0)
    assert layer.counts()["rejected_terminated"] == 1


def test_arm_mode_zeroes_the_base_and_base_mode_zeroes_the_arm():
    layer = make_layer()
    layer.submit_arm(arm((0.1, 0.0, 0.0)), 0.0)
    layer.submit_base(base((0.2, 0.0, 0.0)), 0.0)
    out = tick(layer, 0.02)
    assert out.arm.linear_mps == (0.1, 0.0, 0.0)
    assert out.base.linear_mps == (0.2, 0.0, 0.0)  # no mode named yet: both pass
    layer.set_mode("arm")
    assert tick(layer, 0.04).base.is_zero()
    layer.set_mode("base")
    out = tick(layer, 0.06)
    assert out.arm.is_zero()
    assert out.base.linear_mps == (0.2, 0.0, 0.0)


def test_unknown_mode_is_rejected_and_counted():
    layer = make_layer()
    layer.set_mode("base")
    assert layer.set_mode("fly") is RejectReason.INVALID_MODE
    assert layer.mode is Mode.BASE
    assert layer.counts()["rejected_invalid_mode"] == 1


def test_commands_are_refused_until_enabled_and_disable_stops():
    layer = SafetyLayer(SafetyLimits(**INSTANT))
    assert layer.state(0.0) is MotionState.INACTIVE
    assert layer.submit_arm(arm(stamp_s=0.0), 0.0) is RejectReason.INACTIVE
    layer.enable(0.0)
    layer.submit_arm(arm((0.1, 0.0, 0.0)), 0.0)
    assert not tick(layer, 0.02).is_stop
    layer.disable()
    assert tick(layer, 0.04).is_stop
    assert tick(layer, 0.06) is None
    assert layer.counts()["rejected_inactive"] == 1


# --- properties ---------------------------------------------------------------------------------

LIMITS = SafetyLimits(
    max_linear_speed_mps=(0.25, 0.2, 0.15),
    max_angular_speed_rps=(1.0, 0.8, 0.6),
    max_linear_accel_mps2=1.0,
    max_angular_accel_rps2=3.0,
    max_base_linear_speed_mps=(0.5, 0.0, 0.0),
    max_base_angular_speed_rps=(0.0, 0.0, 1.0),
    max_base_linear_accel_mps2=0.5,
    max_base_angular_accel_rps2=2.0,
)
SPEED = {
    "arm": LIMITS.max_linear_speed_mps + LIMITS.max_angular_speed_rps,
    "base": LIMITS.max_base_linear_speed_mps + LIMITS.max_base_angular_speed_rps,
}
ACCEL = {"arm": (1.0,) * 3 + (3.0,) * 3, "base": (0.5,) * 3 + (2.0,) * 3}
speeds = st.floats(-5.0, 5.0, allow_nan=False)
vec3 = st.tuples(speeds, speeds, speeds)
event = st.tuples(
    st.floats(0.001, 0.2),  # time to the next tick
    st.sampled_from(["arm", "base", "none", "none", "zero"]),
    vec3,
    vec3,
    st.floats(-0.2, 0.6),  # command age at arrival
)


@settings(max_examples=150, deadline=None)
@given(st.lists(event, min_size=1, max_size=60))
def test_outputs_never_exceed_speed_or_acceleration_limits(events):
    layer = SafetyLayer(LIMITS)
    layer.enable(0.0)
    now_s = 0.0
    previous = {"arm": (0.0,) * 6, "base": (0.0,) * 6}
    expiry_s = {"arm": -1.0, "base": -1.0}
    for dt_s, kind, linear, angular, age_s in events:
        if kind != "none":
            name = "base" if kind == "base" else "arm"
            submit = layer.submit_base if kind == "base" else layer.submit_arm
            cls = BaseCommand if kind == "base" else ArmCommand
            stamp_s = now_s - age_s
            target = (0.0,) * 3 if kind == "zero" else linear
            if submit(cls(target, angular, stamp_s), now_s) is None:
                expiry_s[name] = min(stamp_s, now_s) + LIMITS.command_timeout_s
        elapsed = min(dt_s, LIMITS.max_tick_s)
        now_s += dt_s
        out = layer.update(now_s)
        if out is None:
            continue
        for name, sent in (("arm", out.arm), ("base", out.base)):
            if sent is None:
                continue
            values = sent.values()
            for value, limit in zip(values, SPEED[name], strict=True):
                assert abs(value) <= limit + 1e-12
            if out.is_stop or now_s > expiry_s[name]:
                assert sent.is_zero()  # a timeout stops at once, by design
                previous[name] = values
                continue
            for value, before, rate in zip(values, previous[name], ACCEL[name], strict=True):
                assert abs(value - before) <= rate * elapsed + 1e-9
            previous[name] = values
