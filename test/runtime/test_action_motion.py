"""Decoded actions to motion over one control tick: per-tick contract, modes, rotations."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("scipy")

from rt_ros.runtime.action_codec import ActionTokenCodec
from rt_ros.runtime.action_motion import (
    action_to_motion,
    rotation_vector_to_rpy,
    rpy_to_rotation_vector,
)
from rt_ros.runtime.action_space import load_action_space

PERIOD_S = 1.0 / 3.0


def _action(space, mode: str, **values: float):
    codec = ActionTokenCodec(space)
    row = {name: 0.0 for name in space.names}
    row.update(values)
    mode_dim = space.mode_dimension
    row[mode_dim.name] = float(mode_dim.values[mode_dim.labels.index(mode)])
    return codec.decode_tokens(codec.encode(row, rounding="nearest"))


def test_rpy_and_rotation_vector_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        rpy = rng.uniform(-0.5, 0.5, 3)
        np.testing.assert_allclose(rotation_vector_to_rpy(rpy_to_rotation_vector(rpy)), rpy)
    # A pure yaw is a rotation about z.
    np.testing.assert_allclose(rpy_to_rotation_vector([0, 0, 0.2]), [0, 0, 0.2], atol=1e-12)


def test_arm_mode_gives_per_tick_displacement_over_the_period_and_zeroes_the_base():
    space = load_action_space("rt1_everyday_robots")
    action = _action(
        space,
        "arm",
        world_vector_x=0.2,
        rotation_delta_yaw=0.3,
        base_displacement_vector_x=0.5,
        gripper_closedness_action=1.0,
    )
    motion = action_to_motion(action, space, PERIOD_S)
    assert motion.arm_twist[0] == pytest.approx(action.values["world_vector_x"] / PERIOD_S)
    assert motion.arm_twist[5] == pytest.approx(
        rpy_to_rotation_vector(
            [action.values[f"rotation_delta_{axis}"] for axis in ("roll", "pitch", "yaw")]
        )[2]
        / PERIOD_S
    )
    np.testing.assert_array_equal(motion.base_twist, 0.0)
    assert motion.gripper_closedness == 1.0
    assert motion.mode == "arm"
    assert not motion.terminate


def test_base_mode_zeroes_the_arm_and_terminate_stops_both():
    space = load_action_space("rt1_everyday_robots")
    base = action_to_motion(
        _action(
            space, "base", world_vector_x=0.2, base_displacement_vertical_rotation=math.pi / 4
        ),
        space,
        PERIOD_S,
    )
    np.testing.assert_array_equal(base.arm_twist, 0.0)
    assert base.base_twist[2] == pytest.approx(math.pi / 4 / PERIOD_S, abs=0.02 / PERIOD_S)
    end = action_to_motion(_action(space, "terminate", world_vector_x=0.2), space, PERIOD_S)
    assert end.terminate
    np.testing.assert_array_equal(end.arm_twist, 0.0)
    np.testing.assert_array_equal(end.base_twist, 0.0)


def test_period_must_be_positive():
    space = load_action_space("rt1_everyday_robots")
    with pytest.raises(ValueError, match="control_period_s"):
        action_to_motion(_action(space, "arm"), space, 0.0)
