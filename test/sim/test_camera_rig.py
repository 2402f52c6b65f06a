"""Camera rigs: the shipped model's camera unchanged, head_v2 framed on the counter, and the
rig a model runs on taken from what its training data recorded."""

from __future__ import annotations

import numpy as np
import pytest

from rt_ros.sim import robot_description as rd
from rt_ros.sim.camera_rig import (
    CAMERA_RIGS,
    DEFAULT_CAMERA_RIG,
    camera_rig,
    recorded_rig,
    rig_for_model,
    world_config,
)
from rt_ros.sim.image_motion import image_motion_per_cm
from rt_ros.sim.tasks import get_task
from rt_ros.sim.world import SimWorld


def test_an_unknown_rig_is_refused_naming_the_rigs():
    with pytest.raises(ValueError, match="head_v1, head_v2"):
        camera_rig("head_v9")
    with pytest.raises(ValueError, match="head_v1"):
        rig_for_model("wrist", None)


def test_the_rig_a_model_runs_on_is_the_one_its_data_recorded():
    assert recorded_rig({"data": {"camera_rig": "head_v2"}}) == "head_v2"
    # Before rigs were recorded, from a real robot, or a name this version does not know.
    for provenance in (None, {}, {"data": {}}, {"data": {"camera_rig": None}}):
        assert recorded_rig(provenance) is None
    assert recorded_rig({"data": {"camera_rig": "head_v9"}}) is None
    assert rig_for_model(None, None) == DEFAULT_CAMERA_RIG
    assert rig_for_model("head_v2", None) == "head_v2"


def test_a_bundles_recorded_rig_is_read_from_its_manifest():
    from rt_ros.model.shipped import DEFAULT_BUNDLE
    from rt_ros.paths import share_dir

    bundle = share_dir() / DEFAULT_BUNDLE
    if not (bundle / "manifest.yaml").is_file():
        pytest.skip("the shipped bundle is exported at setup (rt-ros export --shipped)")
    # The shipped model learnt from recordings made before rigs were named: head_v1's.
    assert rig_for_model(None, bundle) == "head_v1"
    assert rig_for_model("head_v2", bundle) == "head_v2"


def test_head_mount_checks_its_values_and_the_default_is_the_xacros():
    with pytest.raises(ValueError, match="mast_height_m"):
        rd.HeadMount(mast_height_m=3.0)
    with pytest.raises(ValueError, match="camera_pitch_rad"):
        rd.HeadMount(camera_pitch_rad=-0.2)
    head_v1 = CAMERA_RIGS["head_v1"]
    assert rd.robot_urdf() == rd.robot_urdf(
        head=rd.HeadMount(head_v1.mast_height_m, head_v1.pitch_rad)
    )
    assert 'rpy="0 0.68 0"' in rd.robot_urdf(head=rd.HeadMount(camera_pitch_rad=0.68))


def test_head_v1_is_exactly_the_camera_the_shipped_model_learnt_from():
    default, rig = SimWorld(), SimWorld(world_config("head_v1"))
    try:
        for world in (default, rig):
            world.reset(100100, get_task("pick"), "seen")
        assert np.array_equal(default.render(), rig.render())
    finally:
        default.close()
        rig.close()


def test_head_v2_sees_the_counter_at_more_pixels_per_centimetre():
    """Its frame has the rig's size, every object of the layout is in it, and a centimetre of
    motion at the target moves the model's input more than in head_v1's frame."""
    from rt_ros.sim.objects import OBJECTS

    motions = {}
    for name in ("head_v1", "head_v2"):
        rig = camera_rig(name)
        world = SimWorld(world_config(name))
        try:
            task = world.reset(100100, get_task("pick"), "seen")
            assert world.render().shape == (rig.height_px, rig.width_px, 3)
            on_counter = [n for n in OBJECTS if not world.is_parked(n)]
            pixels = world.camera.project(
                world.data, np.stack([world.object_position(n) for n in on_counter])
            )
            assert (pixels >= 0).all()
            assert (pixels < [rig.width_px, rig.height_px]).all()
            motions[name] = image_motion_per_cm(
                world, world.object_position(task.target), (128, 128)
            )
        finally:
            world.close()
    assert motions["head_v2"].forward_px_per_cm > 1.3 * motions["head_v1"].forward_px_per_cm
    assert motions["head_v2"].up_px_per_cm > 1.3 * motions["head_v1"].up_px_per_cm
    assert motions["head_v2"].lateral_px_per_cm > 0.95 * motions["head_v1"].lateral_px_per_cm
