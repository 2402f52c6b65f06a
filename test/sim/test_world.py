"""SimWorld: state, commands, determinism, object rest heights, and grasps held by friction."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from rt_ros.sim import robot_description as rd
from rt_ros.sim.objects import OBJECTS


def test_state_reports_joints_end_effector_and_base(world):
    world.reset(0)
    state = world.state()
    assert state.joint_names == rd.ROBOT_JOINTS
    assert state.joint_positions.shape == state.joint_velocities.shape == (12,)
    np.testing.assert_allclose(state.joint_positions[3:10], world.config.arm_home_q, atol=2e-3)
    assert state.ee_position_m.shape == (3,)
    assert abs(np.linalg.norm(state.ee_quaternion_wxyz) - 1.0) < 1e-9
    np.testing.assert_allclose(state.base_pose, 0.0, atol=1e-3)
    assert state.gripper_opening_m > 0.09  # open at reset
    assert state.time_s == 0.0


def test_apply_refuses_bad_commands(world):
    with pytest.raises(ValueError, match="6 values"):
        world.apply(np.zeros(5), np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="finite"):
        world.apply([np.nan, 0, 0, 0, 0, 0], np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="duration_s"):
        world.step(-1.0)


def test_base_twist_moves_the_base_in_its_own_frame(world):
    world.reset(0)
    ee_before, _ = world.ee_pose()
    world.apply(np.zeros(6), [0.0, 0.0, 0.3], -1.0)
    world.step(1.0)
    world.apply(np.zeros(6), [-0.1, 0.0, 0.0], -1.0)  # backwards, away from the counter
    world.step(1.0)
    world.stop()
    world.step(0.5)
    x, y, yaw = world.state().base_pose
    assert yaw == pytest.approx(0.3, abs=0.005)
    # 0.1 m backwards along the turned base's x axis.
    assert x == pytest.approx(-0.1 * np.cos(0.3), abs=0.003)
    assert y == pytest.approx(-0.1 * np.sin(0.3), abs=0.003)
    # The arm rides along: the end effector keeps its pose in the base frame.
    ee_after, _ = world.ee_pose()
    np.testing.assert_allclose(ee_after, ee_before, atol=0.003)


def test_same_seed_and_commands_replay_identically(world):
    def run() -> np.ndarray:
        world.reset(7, "pick")
        for step in range(6):
            world.apply([0.02, -0.01, -0.03, 0.0, 0.0, 0.1 * step], np.zeros(3), 1.0)
            world.step(1.0 / 3.0)
        return world.data.qpos.copy()

    np.testing.assert_array_equal(run(), run())


def test_objects_rest_at_the_catalogue_heights(world):
    world.reset(0)
    spots = [(x, y) for x in (0.5, 0.66) for y in (-0.25, -0.09, 0.07)]
    for name, spot in zip(OBJECTS, spots, strict=True):
        world.place_on_counter(name, spot)
    world.step(0.5)
    start = {name: world.object_position(name) for name in OBJECTS}
    world.step(10.0)
    for name, obj in OBJECTS.items():
        assert world.object_height_m(name) == pytest.approx(obj.rest_height_m, abs=0.002), name
        # Resting objects stay put: no creep on the counter.
        assert np.linalg.norm(world.object_position(name) - start[name]) < 5e-4, name


def _grasp_can(world) -> None:
    """Close the gripper on a can standing under the home pose and lift it by 10 cm."""
    world.reset(0)
    position, _ = world.ee_pose()
    world.place_on_counter("red_can", position[:2])
    world.step(0.3)
    tick = 1.0 / 3.0
    down = world.counter_height_m + 0.075 - position[2]
    for _ in range(6):
        world.apply([0.0, 0.0, down / (6 * tick), 0.0, 0.0, 0.0], np.zeros(3), -1.0)
        world.step(tick)
    world.apply(np.zeros(6), np.zeros(3), 1.0)
    world.step(1.0)
    world.apply([0.0, 0.0, 0.1, 0.0, 0.0, 0.0], np.zeros(3), 1.0)
    world.step(1.0)
    world.stop()
    world.step(0.3)


def test_a_grasp_lifts_a_can_by_friction_and_opening_drops_it(world):
    _grasp_can(world)
    assert world.object_height_m("red_can") > OBJECTS["red_can"].rest_height_m + 0.08
    assert world.fingers_touching("red_can") == 2
    # No weld: once the fingers open, the can falls back to the counter.
    world.apply(np.zeros(6), np.zeros(3), -1.0)
    world.step(1.5)
    assert world.fingers_touching("red_can") == 0
    assert world.object_height_m("red_can") < OBJECTS["red_can"].rest_height_m + 0.01
