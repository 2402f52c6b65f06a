"""The head camera's projection lands where MuJoCo draws a point, and the image motion per
centimetre that `rt-ros grasp-precision` reports follows from it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

import mujoco

from rt_ros.sim.image_motion import image_motion_per_cm
from rt_ros.sim.scene import HEAD_CAMERA
from rt_ros.sim.tasks import get_task


def _segmented(world) -> np.ndarray:
    """Per pixel of the head camera's view: the id of the geom drawn there (-1: none)."""
    config = world.camera.config
    renderer = mujoco.Renderer(world.model, height=config.height_px, width=config.width_px)
    try:
        renderer.enable_segmentation_rendering()
        renderer.update_scene(world.data, camera=HEAD_CAMERA)
        ids, types = np.moveaxis(renderer.render(), -1, 0)
    finally:
        renderer.close()
    return np.where(types == int(mujoco.mjtObj.mjOBJ_GEOM), ids, -1)


@pytest.mark.parametrize("seed", [3, 11, 27])
def test_an_object_is_drawn_where_its_centre_projects(world, seed):
    task = world.reset(seed, get_task("pick"), "seen")
    body = world.model.body(task.target).id
    geoms = np.flatnonzero(world.model.geom_bodyid == body)
    drawn = np.isin(_segmented(world), geoms)
    assert drawn.sum() > 20, "the target is not in view"
    centre = world.data.geom_xpos[geoms].mean(axis=0)
    (projected,) = world.camera.project(world.data, centre)
    column, row = np.round(projected).astype(int)
    # The object's centre projects onto the object (a mirrored or shifted projection lands
    # elsewhere on the counter), and well inside its outline.
    assert drawn[row - 1 : row + 2, column - 1 : column + 2].all(), (projected, task.target)
    rows, columns = np.nonzero(drawn)
    assert np.linalg.norm([columns.mean() - projected[0], rows.mean() - projected[1]]) < 8.0


def test_image_motion_scales_with_the_input_size(world):
    task = world.reset(3, get_task("pick"), "seen")
    point = world.object_position(task.target)
    config = world.camera.config
    native = image_motion_per_cm(world, point, (config.height_px, config.width_px))
    half = image_motion_per_cm(world, point, (config.height_px // 2, config.width_px // 2))
    for name in ("forward_px_per_cm", "lateral_px_per_cm", "up_px_per_cm"):
        assert getattr(native, name) > 0
        assert getattr(half, name) == pytest.approx(getattr(native, name) / 2)
    assert half.forward_up_angle_deg == pytest.approx(native.forward_up_angle_deg)
    # This head camera looks at the counter from above and behind the arm: forward and up
    # motion are seen along nearly the same image direction.
    assert 0 < native.forward_up_angle_deg < 30
    assert half.line_of_sight_elevation_deg == native.line_of_sight_elevation_deg
    # Along the line of sight the image does not move: 1 cm forward and tan(elevation) cm lower
    # (straight ahead of the camera) stays on nearly the same pixel, where 1 cm forward alone
    # moves it by about a pixel.
    sideways = world.to_base(point) - world.to_base(world.data.cam_xpos[world.camera.camera_id])
    assert abs(sideways[1]) < 0.35  # the targets lie within about 25 degrees of straight ahead
    drop_m = 0.01 * np.tan(np.radians(native.line_of_sight_elevation_deg))
    _, base_rotation = world.base_pose_world()
    along = point + 0.01 * base_rotation[:, 0] - np.array([0.0, 0.0, drop_m])
    before, after = world.camera.project(world.data, np.stack([point, along]))
    assert np.linalg.norm(after - before) < 0.35 * native.forward_px_per_cm
    with pytest.raises(ValueError, match="input_size_px"):
        image_motion_per_cm(world, point, (0, 128))


def test_a_point_behind_the_camera_is_refused(world):
    world.reset(3, get_task("pick"), "seen")
    camera = world.data.cam_xpos[world.model.camera(HEAD_CAMERA).id]
    rotation = world.data.cam_xmat[world.model.camera(HEAD_CAMERA).id].reshape(3, 3)
    behind = camera + rotation[:, 2]  # MuJoCo cameras look down their -z
    with pytest.raises(ValueError, match="behind"):
        world.camera.project(world.data, behind)
