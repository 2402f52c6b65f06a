"""The training store: frames resized once, tokens, one embedding per instruction, a stable
held-out split, and no rebuild while the recordings are unchanged."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rt_ros.runtime.action_space import load_action_space
from rt_ros.runtime.frame_preprocess import resize_frame
from rt_ros.train.bag_reader import BagReader
from rt_ros.train.topic_map import load_topic_map
from rt_ros.train.trainer import instruction_encoder_for_training
from rt_ros.train.training_store import (
    StoreError,
    TrainingStore,
    build_store,
    open_built_store,
    validation_split,
)


def test_store_holds_every_tick_resized_with_its_tokens(training_store, recorded_episodes):
    reader = BagReader(load_topic_map(), load_action_space())
    episodes = training_store.episodes
    assert len(episodes) == 6
    assert training_store.frames.shape == (sum(e.length for e in episodes), 128, 128, 3)
    assert training_store.frames.dtype == np.uint8
    record = next(e for e in episodes if e.source.endswith("pick_seed2.mcap"))
    (episode,) = reader.episodes(recorded_episodes / "pick" / "pick_seed2.mcap")
    rows = slice(record.start, record.start + record.length)
    np.testing.assert_array_equal(training_store.tokens[rows], episode.tokens)
    np.testing.assert_array_equal(
        training_store.frames[record.start], resize_frame(episode.frames[0], 128, 128)[0]
    )
    assert training_store.instructions[record.instruction] == episode.instruction
    assert (record.family, record.seed, record.origin, record.success) == (
        "pick",
        2,
        "expert",
        True,
    )


def test_one_embedding_per_distinct_instruction_as_the_robot_computes_it(training_store):
    store = training_store
    assert len(store.instructions) == len(set(store.instructions)) == len(store.embeddings)
    encoder = instruction_encoder_for_training()
    for text, vector in zip(store.instructions, store.embeddings, strict=True):
        np.testing.assert_array_equal(vector, encoder.encode(text).astype(np.float32))


def test_held_out_split_is_by_recording_and_stable():
    names = [f"pick_seed{seed}.mcap" for seed in range(400)]
    splits = [validation_split(f"/data/{name}", 0.1) for name in names]
    assert 20 <= splits.count("val") <= 60
    # The folder does not matter, only the recording's name (the same layout seed).
    assert splits == [validation_split(f"/other/{name}#0", 0.1) for name in names]
    assert set(validation_split(name, 0.0) for name in names) == {"train"}


def test_store_is_reused_until_a_recording_changes(training_store, recorded_episodes, tmp_path):
    folder = tmp_path / "recordings"
    shutil.copytree(recorded_episodes, folder)
    reader = BagReader(load_topic_map(), load_action_space())
    encoder = instruction_encoder_for_training()
    store_dir = tmp_path / "store"
    build_store([folder], store_dir, reader, encoder, (128, 128))
    built = (store_dir / "frames.u8").stat().st_mtime_ns
    again = build_store([folder], store_dir, reader, encoder, (128, 128))
    assert (store_dir / "frames.u8").stat().st_mtime_ns == built
    (folder / "pick" / "pick_seed3.mcap").unlink()
    rebuilt = build_store([folder], store_dir, reader, encoder, (128, 128))
    assert len(rebuilt.episodes) == len(again.episodes) - 1
    assert isinstance(TrainingStore(store_dir), TrainingStore)


def test_a_built_store_opens_without_its_recordings(training_store, recorded_episodes):
    store = open_built_store(training_store.folder, load_action_space())
    assert len(store.episodes) == len(training_store.episodes)
    assert store.recording_folders() == sorted(
        str(folder) for folder in (recorded_episodes / "pick", recorded_episodes / "knock_over")
    )


def test_a_missing_damaged_or_foreign_store_is_refused(training_store, tmp_path):
    space = load_action_space()
    with pytest.raises(StoreError, match=r"missing store\.json, frames\.u8"):
        open_built_store(tmp_path / "nowhere", space)
    damaged = tmp_path / "damaged"
    shutil.copytree(training_store.folder, damaged)
    with open(damaged / "frames.u8", "r+b") as frames:
        frames.truncate(frames.seek(0, 2) - 1)
    with pytest.raises(StoreError, match=r"damaged: frames\.u8 holds"):
        open_built_store(damaged, space)
    with pytest.raises(StoreError, match="action space 'rt1_everyday_robots', not 'rt1x_google"):
        open_built_store(training_store.folder, load_action_space("rt1x_google_robot"))


def test_recordings_of_two_camera_rigs_are_refused_and_one_rig_is_recorded(
    training_store, recorded_episodes, tmp_path
):
    """Collect writes its rig into each episode; a store holds one rig's episodes and says
    which (the trainer puts it in the model's provenance); two rigs are refused by name."""
    from rt_ros.train.collect import collect_demonstrations
    from rt_ros.train.training_store import StoreError

    # The session's recordings were made on the default rig.
    assert training_store.camera_rig == "head_v1"
    assert {episode.camera_rig for episode in training_store.episodes} == {"head_v1"}
    other = tmp_path / "head_v2"
    collect_demonstrations("pick", 1, other, seed_start=5, camera_rig="head_v2")
    reader = BagReader(load_topic_map(), load_action_space())
    encoder = instruction_encoder_for_training()
    alone = build_store([other], tmp_path / "store_v2", reader, encoder, (128, 128))
    assert alone.camera_rig == "head_v2"
    with pytest.raises(
        StoreError, match=r"pick_seed5.mcap was recorded with camera rig 'head_v2'"
    ):
        build_store([recorded_episodes, other], tmp_path / "mixed", reader, encoder, (128, 128))
    with pytest.raises(ValueError, match="unknown camera rig"):
        collect_demonstrations("pick", 1, tmp_path / "bad", camera_rig="head_v9")
