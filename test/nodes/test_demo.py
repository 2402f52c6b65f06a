"""`rt-ros demo` end to end, as a newcomer runs it: the simulated robot, the policy on a real
exported bundle, a video and a summary written."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mujoco", reason="the demo needs the sim extra (mujoco)")
pytest.importorskip("rclpy", reason="needs rclpy (the ros extra or a ROS 2 install)")
imageio = pytest.importorskip("imageio.v2", reason="the demo writes mp4 with imageio")

from conftest import console_script  # noqa: E402

pytestmark = pytest.mark.ros


def test_demo_runs_an_episode_and_writes_video_and_summary(start_process, tiny_bundle, tmp_path):
    out = tmp_path / "demo"
    demo = start_process(
        [
            console_script("rt-ros"),
            "demo",
            "--model", str(tiny_bundle),
            "--task", "pick",
            "--seed", "2",
            "--max-steps", "6",
            "--control-rate-hz", "5.0",
            "--out", str(out),
        ],
        name="rt-ros demo",
    )  # fmt: skip
    assert demo.wait(180.0) == 0, demo.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "pick"
    assert summary["steps"] == 6
    assert summary["untrained_model"] is True
    assert summary["instruction"]
    assert summary["image_to_command_ms_p50"] > 0
    assert summary["image_to_command_ms_p99"] >= summary["image_to_command_ms_p50"]
    assert isinstance(summary["success"], bool)
    assert isinstance(summary["timing_problems"], list)  # reported, not asserted empty
    assert summary["camera_rig"] == "head_v1"  # the tiny bundle's data named no rig
    assert "UNTRAINED" in demo.output
    # A comprehension, not list(): the ffmpeg reader reports an infinite length.
    frames = [frame for frame in imageio.get_reader(str(out / "demo.mp4"))]
    assert len(frames) == summary["frames"] >= 3
    assert frames[0].shape == (512, 640, 3)  # the 320x256 camera, enlarged for the text
    assert (out / "last_frame.png").stat().st_size > 0
    storyboard = imageio.imread(str(out / "storyboard.png"))
    assert storyboard.shape == (2 * 256, 2 * 320, 3)  # four half-size frames, two columns


def test_demo_puts_the_sim_driver_on_the_camera_rig_asked_for(
    start_process, tiny_bundle, tmp_path
):
    """--camera-rig reaches the driver's sim backend: its frames have the rig's size."""
    out = tmp_path / "demo"
    demo = start_process(
        [
            console_script("rt-ros"),
            "demo",
            "--model", str(tiny_bundle),
            "--task", "drawer",
            "--seed", "3",
            "--max-steps", "3",
            "--control-rate-hz", "5.0",
            "--camera-rig", "head_v2",
            "--out", str(out),
        ],
        name="rt-ros demo head_v2",
    )  # fmt: skip
    assert demo.wait(180.0) == 0, demo.output
    frames = [frame for frame in imageio.get_reader(str(out / "demo.mp4"))]
    assert frames[0].shape == (2 * 190, 2 * 340, 3)
    assert json.loads((out / "summary.json").read_text())["camera_rig"] == "head_v2"
    assert "camera head_v2 340x190" in demo.output
