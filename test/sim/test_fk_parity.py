"""Forward kinematics of the one URDF agree between pinocchio and the MuJoCo kitchen model."""

from __future__ import annotations

import numpy as np
import pytest

pin = pytest.importorskip("pinocchio")
mujoco = pytest.importorskip("mujoco")

from rt_ros.sim import robot_description as rd  # noqa: E402
from rt_ros.sim.scene import build_model  # noqa: E402

TOLERANCE_M = 1e-6
CONFIGURATIONS = 20


def test_link_poses_agree_on_random_configurations():
    model = pin.buildModelFromXML(rd.robot_urdf())
    data = model.createData()
    sim = build_model()
    sim_data = mujoco.MjData(sim)
    frames = [frame.name for frame in model.frames if frame.type == pin.FrameType.BODY]
    assert rd.END_EFFECTOR_FRAME in frames
    assert rd.HEAD_CAMERA_OPTICAL_FRAME in frames
    rng = np.random.default_rng(0)
    worst_position = worst_rotation = 0.0
    for _ in range(CONFIGURATIONS):
        q = rng.uniform(model.lowerPositionLimit, model.upperPositionLimit)
        q[:2] = rng.uniform(-3.0, 3.0, 2)  # the base's x / y range is larger than useful
        pin.framesForwardKinematics(model, data, q)
        for name, value in zip(rd.ROBOT_JOINTS, q, strict=True):
            sim_data.qpos[sim.joint(name).qposadr[0]] = value
        mujoco.mj_kinematics(sim, sim_data)
        for frame in frames:
            placement = data.oMf[model.getFrameId(frame)]
            body = sim.body(frame).id
            worst_position = max(
                worst_position, np.linalg.norm(placement.translation - sim_data.xpos[body])
            )
            worst_rotation = max(
                worst_rotation,
                np.abs(placement.rotation - sim_data.xmat[body].reshape(3, 3)).max(),
            )
    assert worst_position < TOLERANCE_M
    assert worst_rotation < TOLERANCE_M
