"""Recorded episodes shared by the training tests: a few scripted-expert episodes per session."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mujoco", reason="recording episodes needs the sim extra (mujoco)")
pytest.importorskip("mcap_ros2", reason="recording episodes needs the sim extra (mcap)")
pytest.importorskip("torch", reason="training needs the train extra (torch)")


@pytest.fixture(scope="session")
def recorded_episodes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six expert episodes: pick seeds 0-3, knock_over seeds 2-3 (seen split; the split hash
    holds knock_over_seed3 out at val_fraction 0.3), one .mcap file each."""
    from rt_ros.train.collect import collect_demonstrations

    folder = tmp_path_factory.mktemp("recordings")
    collect_demonstrations("pick", episodes=4, out_dir=folder / "pick", seed_start=0)
    collect_demonstrations("knock_over", episodes=2, out_dir=folder / "knock_over", seed_start=2)
    return folder


@pytest.fixture(scope="session")
def training_store(recorded_episodes: Path, tmp_path_factory: pytest.TempPathFactory):
    """The store of the recorded episodes at rt1-tiny's image size, a third held out."""
    from rt_ros.model.presets import get_preset
    from rt_ros.runtime.action_space import load_action_space
    from rt_ros.train.bag_reader import BagReader
    from rt_ros.train.topic_map import load_topic_map
    from rt_ros.train.trainer import instruction_encoder_for_training
    from rt_ros.train.training_store import build_store

    preset = get_preset("rt1-tiny")
    reader = BagReader(load_topic_map(), load_action_space())
    return build_store(
        [recorded_episodes],
        tmp_path_factory.mktemp("store"),
        reader,
        instruction_encoder_for_training(),
        (preset.image_height_px, preset.image_width_px),
        val_fraction=0.3,
    )
