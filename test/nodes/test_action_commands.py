"""RT-1 actions -> velocity commands over one control period, with mode gating (no ROS)."""

import math

import numpy as np
import pytest

from rt_ros.nodes.action_commands import action_to_commands, stop_commands
from rt_ros.nodes.commands import Mode
from rt_ros.runtime.action_codec import ActionTokenCodec
from rt_ros.runtime.action_space import load_action_space
from rt_ros.runtime.errors import ConfigError

PERIOD_S = 1 / 3


@pytest.fixture(scope="module")
def space():
    return load_action_space("rt1_everyday_robots")


def make_action(space, mode: str, **values):
    """An action through the real codec: tokens from values, then decoded."""
    codec = ActionTokenCodec(space)
    mode_dim = space.mode_dimension
    full = {dim.name: 0.0 for dim in space.dimensions}
    full[mode_dim.name] = mode_dim.values[mode_dim.labels.index(mode)]
    full.update(values)
    return codec.decode_tokens(codec.encode(full, rounding="nearest"))


def test_arm_mode_turns_displacements_into_velocities_and_zeroes_the_base(space):
    action = make_action(
        space,
        "arm",
        world_vector_x=0.1,
        world_vector_z=-0.05,
        base_displacement_vector_x=0.5,
        gripper_closedness_action=1.0,
    )
    commands = action_to_commands(action, space, PERIOD_S, stamp_s=12.5)
    assert commands.mode is Mode.ARM
    linear = commands.arm.linear_mps
    assert linear[0] == pytest.approx(action.values["world_vector_x"] / PERIOD_S)
    assert linear[0] == pytest.approx(0.3, abs=0.02)  # 0.1 m over a third of a second
    assert linear[2] == pytest.approx(-0.15, abs=0.02)
    assert commands.base.is_zero()
    assert commands.gripper_closedness == pytest.approx(1.0)
    assert commands.arm.stamp_s == commands.base.stamp_s == 12.5


def test_base_mode_zeroes_the_arm(space):
    action = make_action(
        space,
        "base",
        world_vector_x=0.2,
        base_displacement_vector_x=0.1,
        base_displacement_vertical_rotation=0.3,
    )
    commands = action_to_commands(action, space, PERIOD_S, stamp_s=0.0)
    assert commands.arm.is_zero()
    assert commands.base.linear_mps[0] == pytest.approx(0.3, abs=0.02)
    assert commands.base.angular_rps[2] == pytest.approx(0.9, abs=0.05)


def test_terminate_stops_both(space):
    action = make_action(space, "terminate", world_vector_x=0.2, base_displacement_vector_y=0.2)
    commands = action_to_commands(action, space, PERIOD_S, stamp_s=0.0)
    assert commands.mode is Mode.TERMINATE
    assert commands.arm.is_zero()
    assert commands.base.is_zero()


def _matrix(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i, j = (axis + 1) % 3, (axis + 2) % 3  # cyclic, so Ry gets its sign right
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def _rodrigues(rotation_vector: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(rotation_vector))
    k = rotation_vector / angle
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew


def test_rpy_increments_become_the_matching_angular_velocity(space):
    action = make_action(space, "arm", rotation_delta_yaw=0.3)
    angular = action_to_commands(action, space, PERIOD_S, stamp_s=0.0).arm.angular_rps
    assert angular[2] == pytest.approx(action.values["rotation_delta_yaw"] / PERIOD_S, rel=1e-3)
    # Zero falls between two bins: roll and pitch decode to a few milliradians, no more.
    assert abs(angular[0]) < 0.01 / PERIOD_S
    assert abs(angular[1]) < 0.01 / PERIOD_S


def test_combined_rpy_is_turned_into_the_equivalent_rotation_vector(space):
    action = make_action(space, "arm", rotation_delta_roll=0.5, rotation_delta_pitch=0.5)
    angular = np.array(action_to_commands(action, space, 1.0, 0.0).arm.angular_rps)
    roll, pitch, yaw = (action.values[f"rotation_delta_{n}"] for n in ("roll", "pitch", "yaw"))
    # Fixed-axis roll, then pitch, then yaw: R = Rz(yaw) Ry(pitch) Rx(roll).
    expected = _matrix(2, yaw) @ _matrix(1, pitch) @ _matrix(0, roll)
    np.testing.assert_allclose(_rodrigues(angular), expected, atol=1e-9)
    assert not np.allclose(angular, (roll, pitch, yaw), atol=1e-3)


def test_axis_angle_profiles_pass_the_vector_through():
    space = load_action_space("rt1x_google_robot")
    codec = ActionTokenCodec(space)
    values = {dim.name: 0.0 for dim in space.dimensions}
    mode_dim = space.mode_dimension
    values[mode_dim.name] = mode_dim.values[mode_dim.labels.index("arm")]
    rotation_dims = [space.dimension_for_role(f"arm.angular.{a}").name for a in "xyz"]
    values[rotation_dims[0]] = 0.5
    values[rotation_dims[1]] = 0.5
    action = codec.decode_tokens(codec.encode(values, rounding="nearest"))
    angular = action_to_commands(action, space, 1.0, 0.0).arm.angular_rps
    assert angular[0] == pytest.approx(action.values[rotation_dims[0]])
    assert angular[1] == pytest.approx(action.values[rotation_dims[1]])


def test_stop_holds_the_gripper_and_zero_period_is_refused(space):
    stop = stop_commands(3.0)
    assert stop.arm.is_zero()
    assert stop.base.is_zero()
    assert stop.gripper_closedness is None
    with pytest.raises(ConfigError, match="control_period_s"):
        action_to_commands(make_action(space, "arm"), space, 0.0, 0.0)
