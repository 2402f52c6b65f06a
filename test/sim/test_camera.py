"""The head camera: frame shape, content, and intrinsics that project where MuJoCo renders."""

from __future__ import annotations

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco")

from rt_ros.sim import robot_description as rd  # noqa: E402
from rt_ros.sim.camera import intrinsic_matrix  # noqa: E402


@pytest.fixture
def frame_of(world):
    def render():
        try:
            return world.render()
        except Exception as error:
            pytest.skip(f"no OpenGL backend for MUJOCO_GL: {error}")

    return render


def test_frame_has_the_configured_shape_and_is_not_blank(world, frame_of):
    world.reset(0, "pick")
    frame = frame_of()
    config = world.config.camera
    assert frame.shape == (config.height_px, config.width_px, 3)
    assert frame.dtype == np.uint8
    assert frame.std() > 20
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 500


def test_intrinsics_match_the_rendering(world, frame_of):
    world.reset(0)
    world.place_on_counter("red_can", [0.62, 0.05])
    world.forward()
    camera = world.camera
    info = camera.camera_info()
    k = np.array(info["k"]).reshape(3, 3)
    np.testing.assert_allclose(k, intrinsic_matrix(info["width"], info["height"], camera.fovy_deg))
    assert info["frame_id"] == rd.HEAD_CAMERA_OPTICAL_FRAME
    # Project the can's centre through the optical frame (z forward, x right, y down) and K.
    optical = world.model.body(rd.HEAD_CAMERA_OPTICAL_FRAME).id
    rotation = world.data.xmat[optical].reshape(3, 3)
    point = rotation.T @ (world.object_position("red_can") - world.data.xpos[optical])
    assert point[2] > 0
    u, v, _ = k @ (point / point[2])
    frame = frame_of()
    red = frame[round(v), round(u)].astype(int)
    assert red[0] > 100, red
    assert red[0] > 2 * max(red[1], red[2]), red
