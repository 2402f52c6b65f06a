"""Differential IK: the pure pieces, and the world tracking commanded end-effector deltas.

Tolerance stated here: after one 1/3 s control tick plus 0.2 s to settle, the measured end
effector is within 3 mm of the commanded displacement and 0.02 rad of the commanded rotation.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from rt_ros.sim.ik import (
    damped_least_squares,
    rotate_by_vector,
    rotation_error,
)
from rt_ros.sim.tasks.layout import LayoutConfig

TICK_S = 1.0 / 3.0
SETTLE_S = 0.2
POSITION_TOLERANCE_M = 0.003
ROTATION_TOLERANCE_RAD = 0.02


def test_damped_least_squares_is_the_pseudo_inverse_without_damping():
    rng = np.random.default_rng(0)
    jacobian = rng.normal(size=(6, 7))
    twist = rng.normal(size=6)
    np.testing.assert_allclose(
        damped_least_squares(jacobian, twist, 0.0), np.linalg.pinv(jacobian) @ twist, atol=1e-9
    )
    # The posture pull moves the joints without moving the end effector.
    posture = rng.normal(size=7)
    with_posture = damped_least_squares(jacobian, twist, 0.05, posture)
    without = damped_least_squares(jacobian, twist, 0.05)
    np.testing.assert_allclose(jacobian @ (with_posture - without), 0.0, atol=1e-9)
    assert np.linalg.norm(with_posture - without) > 0.1
    # Damping shrinks the answer near a singularity instead of blowing it up.
    singular = jacobian.copy()
    singular[5] = singular[4] + 1e-9
    assert np.abs(damped_least_squares(singular, twist, 0.05)).max() < 100


def test_rotate_by_vector_and_rotation_error_are_inverse():
    rng = np.random.default_rng(1)
    for _ in range(10):
        start = rotate_by_vector(np.eye(3), rng.normal(size=3))
        turn = rng.uniform(-1.0, 1.0, 3)
        end = rotate_by_vector(start, turn)
        np.testing.assert_allclose(rotation_error(end, start), turn, atol=1e-9)
        np.testing.assert_allclose(end @ end.T, np.eye(3), atol=1e-12)


def test_solve_locks_joints_at_their_limits_and_respects_velocity_limits(world):
    ik = world.ik
    q = np.array(world.config.arm_home_q)
    q[3] = ik.upper[3]  # elbow at its upper limit
    jacobian = ik.jacobian(q)
    for twist in np.eye(6) * 5.0:  # far faster than the joints allow
        qdot = ik.solve(q, twist, jacobian)
        assert qdot[3] <= 0.0
        assert np.all(np.abs(qdot) <= ik.max_velocity + 1e-9)


def test_solve_pose_reaches_the_whole_object_area_pointing_down(world):
    ik = world.ik
    home = np.array(world.config.arm_home_q)
    down = np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    layout = LayoutConfig()
    for x in np.linspace(*layout.x_range_m, 3):
        for y in np.linspace(*layout.y_range_m, 3):
            target = np.array([x, y, world.counter_height_m + 0.03])
            _, position_error, angle_error = ik.solve_pose(home, target, down, iterations=400)
            assert position_error < 1e-3, (x, y)
            assert angle_error < 1e-2, (x, y)


@pytest.mark.parametrize(
    ("linear_m", "angular_rad"),
    [
        ((0.03, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ((0.0, -0.03, 0.0), (0.0, 0.0, 0.0)),
        ((0.0, 0.0, -0.03), (0.0, 0.0, 0.0)),
        ((0.02, 0.02, 0.02), (0.0, 0.0, 0.0)),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.15)),
        ((0.0, 0.0, 0.0), (0.1, 0.0, 0.0)),
        ((0.01, 0.0, 0.0), (0.0, -0.1, 0.0)),
    ],
)
def test_world_tracks_commanded_end_effector_deltas(world, linear_m, angular_rad):
    world.reset(0)
    start_position, start_rotation = world.ee_pose()
    delta = np.array(linear_m + angular_rad)
    world.apply(delta / TICK_S, np.zeros(3), -1.0)
    world.step(TICK_S)
    world.stop()
    world.step(SETTLE_S)
    position, rotation = world.ee_pose()
    assert np.linalg.norm(position - start_position - delta[:3]) < POSITION_TOLERANCE_M
    turn = rotation_error(rotation, start_rotation)
    assert np.linalg.norm(turn - delta[3:]) < ROTATION_TOLERANCE_RAD
