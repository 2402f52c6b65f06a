"""Twist -> joint velocities from the URDF (pinocchio): tracking, limits, singularities, and the
MuJoCo robot's end effector moving as commanded."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="the kinematics need pinocchio (`pin` on PyPI)")
pytest.importorskip("xacro", reason="the robot description needs xacro")

from rt_ros.nodes.arm_kinematics import ArmKinematics, ArmKinematicsConfig
from rt_ros.sim import robot_description as rd

DT_S = 0.02  # one driver tick at 50 Hz
CONFIGURATIONS = 200
# J qdot reproduces the twist to this (m/s, rad/s) where no damping or scaling acts.
TRACKING_TOLERANCE = 1e-9
# Integrating qdot on MuJoCo for a tick: the end effector's displacement matches twist * dt to
# this fraction of the commanded displacement (the rest is the second-order term of one Euler
# step), plus 1e-6 m / rad for rounding.
MUJOCO_RELATIVE_TOLERANCE = 0.02
HOME_Q = (0.084, -0.127, 0.108, 2.004, 0.014, 1.264, 0.187)  # rt_ros.sim.world's arm home


def make_kinematics(config: ArmKinematicsConfig | None = None) -> ArmKinematics:
    return ArmKinematics(
        rd.robot_urdf(), rd.ARM_JOINTS, rd.BASE_LINK, rd.END_EFFECTOR_FRAME, config, HOME_Q
    )


@pytest.fixture(scope="module")
def kinematics() -> ArmKinematics:
    return make_kinematics()


def random_twist(rng: np.random.Generator, linear_mps: float, angular_rps: float) -> np.ndarray:
    return np.concatenate(
        (rng.uniform(-1, 1, 3) * linear_mps, rng.uniform(-1, 1, 3) * angular_rps)
    )


def test_chain_reads_the_urdf(kinematics: ArmKinematics):
    assert kinematics.joint_names == rd.ARM_JOINTS
    limits = rd.joint_limits()
    for index, name in enumerate(rd.ARM_JOINTS):
        assert kinematics.lower[index] == limits[name].lower
        assert kinematics.upper[index] == limits[name].upper
        assert kinematics.velocity_limit[index] == limits[name].velocity


@pytest.mark.parametrize("posture_gain_per_s", [0.0, 2.0])
def test_joint_velocities_reproduce_the_twist_away_from_singularities(posture_gain_per_s):
    kinematics = make_kinematics(ArmKinematicsConfig(posture_gain_per_s=posture_gain_per_s))
    rng = np.random.default_rng(1)
    margin = 0.3
    checked = scaled = 0
    for _ in range(CONFIGURATIONS):
        q = rng.uniform(kinematics.lower + margin, kinematics.upper - margin)
        singular = np.linalg.svd(kinematics.jacobian(q), compute_uv=False)
        if singular[-1] < 2.0 * kinematics.config.singular_value_threshold:
            continue
        twist = random_twist(rng, 0.05, 0.2)
        qdot = kinematics.twist_to_joint_velocities(q, twist, DT_S)
        achieved = kinematics.jacobian(q) @ qdot
        # Exact, or uniformly scaled down because a joint reached its velocity limit.
        scale = achieved @ twist / (twist @ twist)
        np.testing.assert_allclose(achieved, scale * twist, atol=TRACKING_TOLERANCE)
        assert scale <= 1.0 + 1e-12
        if scale < 1.0 - 1e-9:
            assert np.any(np.isclose(np.abs(qdot), kinematics.velocity_limit))
            scaled += 1
        checked += 1
    assert scaled < checked // 2
    assert checked > CONFIGURATIONS // 4


def test_velocity_and_position_limits_hold(kinematics: ArmKinematics):
    rng = np.random.default_rng(2)
    for _ in range(CONFIGURATIONS):
        q = rng.uniform(kinematics.lower, kinematics.upper)
        twist = random_twist(rng, 2.0, 6.0)  # far beyond what the joints can do
        qdot = kinematics.twist_to_joint_velocities(q, twist, DT_S)
        assert np.all(np.abs(qdot) <= kinematics.velocity_limit + 1e-12)
        after = q + qdot * DT_S
        assert np.all(after <= kinematics.upper + 1e-12)
        assert np.all(after >= kinematics.lower - 1e-12)


def test_scaling_keeps_the_twist_direction(kinematics: ArmKinematics):
    twist = np.array([3.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    qdot = kinematics.twist_to_joint_velocities(HOME_Q, twist, DT_S)
    assert np.any(np.isclose(np.abs(qdot), kinematics.velocity_limit))
    achieved = kinematics.jacobian(HOME_Q) @ qdot
    assert achieved[0] > 0.0
    np.testing.assert_allclose(achieved[1:], 0.0, atol=1e-9)


def test_joints_at_a_limit_do_not_move_outwards(kinematics: ArmKinematics):
    rng = np.random.default_rng(3)
    for joint in range(len(rd.ARM_JOINTS)):
        for at_upper in (True, False):
            q = np.array(HOME_Q)
            q[joint] = kinematics.upper[joint] if at_upper else kinematics.lower[joint]
            for _ in range(20):
                qdot = kinematics.twist_to_joint_velocities(q, random_twist(rng, 0.2, 1.0), DT_S)
                if at_upper:
                    assert qdot[joint] <= 0.0
                else:
                    assert qdot[joint] >= 0.0


def test_output_stays_bounded_at_a_singularity(kinematics: ArmKinematics):
    q = np.zeros(len(rd.ARM_JOINTS))  # arm straight up: wrist and shoulder axes align
    singular = np.linalg.svd(kinematics.jacobian(q), compute_uv=False)
    assert singular[-1] < 1e-9
    assert kinematics.manipulability(q) < 1e-9
    twist = np.array([0.0, 0.0, 0.05, 0.0, 0.0, 0.1])  # along the stretched arm: unreachable
    qdot = kinematics.twist_to_joint_velocities(q, twist, DT_S)
    assert np.all(np.isfinite(qdot))
    # DLS: |qdot| <= |twist| / (2 lambda) with lambda = max_damping at the singularity.
    bound = np.linalg.norm(twist) / (2.0 * kinematics.config.max_damping)
    assert np.linalg.norm(qdot) <= bound + 1e-12
    assert np.all(np.abs(qdot) <= kinematics.velocity_limit)
    # Near (not at) the singularity too.
    qdot_near = kinematics.twist_to_joint_velocities(q + 1e-4, twist, DT_S)
    assert np.linalg.norm(qdot_near) <= bound + 1e-12


def test_rejects_bad_input(kinematics: ArmKinematics):
    with pytest.raises(ValueError, match="twist"):
        kinematics.twist_to_joint_velocities(HOME_Q, [0.0, float("nan"), 0, 0, 0, 0], DT_S)
    with pytest.raises(ValueError, match="dt_s"):
        kinematics.twist_to_joint_velocities(HOME_Q, np.zeros(6), 0.0)
    with pytest.raises(ValueError, match="q must have 7"):
        kinematics.forward([0.0] * 6)


def test_mujoco_end_effector_moves_as_commanded(kinematics: ArmKinematics):
    """Integrate qdot for one tick on the MuJoCo robot (joint positions set kinematically) and
    compare its measured end-effector motion with the commanded twist * dt."""
    pytest.importorskip("mujoco", reason="the MuJoCo check needs the `sim` extra")
    from rt_ros.sim.ik import rotation_error
    from rt_ros.sim.world import SimWorld

    world = SimWorld()
    try:
        rng = np.random.default_rng(4)
        for _ in range(20):
            q = np.array(HOME_Q) + rng.uniform(-0.3, 0.3, len(HOME_Q))
            twist = random_twist(rng, 0.1, 0.5)
            qdot = kinematics.twist_to_joint_velocities(q, twist, DT_S)
            world.set_robot_configuration(arm_q=q)
            position, rotation = world.ee_pose()
            pin_position, pin_rotation = kinematics.forward(q)
            np.testing.assert_allclose(pin_position, position, atol=1e-6)
            np.testing.assert_allclose(pin_rotation, rotation, atol=1e-6)
            world.set_robot_configuration(arm_q=q + qdot * DT_S)
            next_position, next_rotation = world.ee_pose()
            commanded = twist * DT_S
            moved = np.concatenate(
                (next_position - position, rotation_error(next_rotation, rotation))
            )
            tolerance = MUJOCO_RELATIVE_TOLERANCE * np.linalg.norm(commanded) + 1e-6
            assert np.linalg.norm(moved - commanded) < tolerance, (moved, commanded)
    finally:
        world.close()
