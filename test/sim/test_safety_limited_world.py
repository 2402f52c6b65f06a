"""The driver's safety layer between episode actions and the simulated world (no ROS)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

pytest.importorskip("mujoco")

from rt_ros.nodes.safety import SafetyLimits
from rt_ros.paths import config_dir
from rt_ros.runtime.action_motion import Motion
from rt_ros.runtime.errors import ConfigError
from rt_ros.sim.expert import RT1_CONTROL_PERIOD_S, ScriptedExpert, run_episode
from rt_ros.sim.safety_limited_world import (
    DRIVER_UPDATE_RATE_HZ,
    SafetyLimitedWorld,
    driver_limits_from_params,
    sim_driver_limits,
)
from rt_ros.sim.tasks import get_task


def test_the_sim_drivers_limits_are_driver_yaml_then_sim_yaml():
    limits = sim_driver_limits()
    assert limits.command_timeout_s == 0.8  # sim.yaml overrides driver.yaml's 0.5
    assert limits.max_base_linear_speed_mps == (0.5, 0.5, 0.0)  # the holonomic sim base
    assert limits.max_linear_accel_mps2 == 1.0  # from driver.yaml
    driver = yaml.safe_load((config_dir() / "driver.yaml").read_text(encoding="utf-8"))
    assert driver["/**/driver_node"]["ros__parameters"]["update_rate_hz"] == DRIVER_UPDATE_RATE_HZ


def test_parameter_files_override_in_order_and_bad_ones_are_refused(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("driver_node:\n  ros__parameters:\n    max_linear_accel_mps2: 2.0\n")
    second.write_text(
        "/**/driver_node:\n  ros__parameters:\n    max_linear_accel_mps2: 3.0\n"
        "    update_rate_hz: 20.0\n"
        "policy_node:\n  ros__parameters:\n    command_timeout_s: 9.0\n"
    )
    limits = driver_limits_from_params([first, second])
    assert limits.max_linear_accel_mps2 == 3.0
    assert limits.command_timeout_s == SafetyLimits().command_timeout_s  # another node's
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        driver_limits_from_params([tmp_path / "missing.yaml"])
    first.write_text("driver_node:\n  ros__parameters:\n    max_linear_accel_mps2: -1.0\n")
    with pytest.raises(ConfigError, match="max_linear_accel_mps2"):
        driver_limits_from_params([first])


def _tick_displacement_m(world, limits: SafetyLimits | None, arm_twist) -> np.ndarray:
    """End-effector displacement over one control tick from rest under `arm_twist`."""
    world.reset(3, get_task("pick"), "seen")
    start = world.state().ee_position_m.copy()
    motion = Motion(np.asarray(arm_twist, dtype=float), np.zeros(3), -1.0, "arm")
    if limits is None:
        world.apply(motion.arm_twist, motion.base_twist, motion.gripper_closedness)
        world.step(RT1_CONTROL_PERIOD_S)
    else:
        limited = SafetyLimitedWorld(world, limits)
        limited.apply(motion)
        limited.step(RT1_CONTROL_PERIOD_S)
    return world.state().ee_position_m - start


def test_acceleration_limits_shorten_a_tick_from_rest_and_generous_ones_do_not(world):
    """0.04 m asked in one tick (the expert's largest step): behind 1 m/s^2 the arm ramps up
    and covers less; behind limits it never meets it covers what the direct world does."""
    twist = (0.04 / RT1_CONTROL_PERIOD_S, 0.0, 0.0, 0.0, 0.0, 0.0)
    direct = _tick_displacement_m(world, None, twist)
    ramped = _tick_displacement_m(world, SafetyLimits(max_linear_accel_mps2=1.0), twist)
    generous = SafetyLimits(max_linear_accel_mps2=1000.0, max_angular_accel_rps2=1000.0)
    free = _tick_displacement_m(world, generous, twist)
    assert direct[0] > 0.02
    assert 0.0 < ramped[0] < direct[0] - 0.004
    np.testing.assert_allclose(free, direct, atol=0.002)


def test_speed_clamps_hold_behind_the_layer(world):
    twist = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # 4 times the default 0.25 m/s
    moved = _tick_displacement_m(world, SafetyLimits(max_linear_accel_mps2=1000.0), twist)
    assert 0.0 < moved[0] <= 0.25 * RT1_CONTROL_PERIOD_S + 0.005


def test_the_expert_succeeds_behind_the_sim_drivers_limits_and_replays(world):
    limits = sim_driver_limits()
    first = run_episode(world, "pick", 5, ScriptedExpert(), driver_limits=limits)
    again = run_episode(world, "pick", 5, ScriptedExpert(), driver_limits=limits)
    assert first.success
    assert first == again
