"""Keyframe weighting: the ticks where the demonstrated action changes are found within each
episode, weighted, and the weighted loss is the plain one when every weight is 1 and leaves out
a step weighted 0; a run trains with it on recorded episodes."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from rt_ros.runtime.action_space import load_action_space
from rt_ros.train.keyframes import keyframe_dimensions, keyframe_rows, keyframe_weights
from rt_ros.train.train_config import TrainConfig
from rt_ros.train.trainer import train
from rt_ros.train.training_store import EpisodeRecord
from rt_ros.train.windowed_model import IGNORE, window_loss


def _episode(start: int, length: int) -> EpisodeRecord:
    return EpisodeRecord("bag", start, length, 0, "train", True, "expert")


def test_keyframes_are_changes_within_an_episode():
    tokens = np.array(
        [
            [128, 133, 0],  # episode 0, first tick: never a keyframe
            [128, 133, 0],  # same action
            [128, 132, 0],  # one bin: below the threshold
            [128, 130, 0],  # two bins: a keyframe
            [128, 130, 1],  # the discrete column changes, by any amount: a keyframe
            [200, 100, 2],  # episode 1, first tick: the jump from the last episode does not count
            [128, 100, 2],  # first column: not measured
        ]
    )
    flags = keyframe_rows(tokens, [_episode(0, 5), _episode(5, 2)], ([1], [2]), min_change_bins=2)
    assert flags.tolist() == [False, False, False, True, True, False, False]
    weights = keyframe_weights(flags, 5.0)
    assert weights.dtype == np.float32
    assert weights.tolist() == [1, 1, 1, 5, 5, 1, 1]
    with pytest.raises(ValueError, match="min_change_bins"):
        keyframe_rows(tokens, [_episode(0, 5)], ([1], []), min_change_bins=0)
    with pytest.raises(ValueError, match=">= 1"):
        keyframe_weights(flags, 0.5)


def test_the_measured_dimensions_are_the_arm_translation_gripper_and_mode():
    space = load_action_space()
    continuous, discrete = keyframe_dimensions(space)
    assert sorted(space.dimensions[i].name for i in continuous) == [
        "gripper_closedness_action",
        "world_vector_x",
        "world_vector_y",
        "world_vector_z",
    ]
    assert [space.dimensions[i].name for i in discrete] == ["terminate_episode"]


def test_weighted_loss_is_the_plain_one_at_weight_one_and_drops_a_zero_weighted_step():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 2, 7, generator=generator)
    targets = torch.randint(0, 7, (3, 4, 2), generator=generator)
    targets[2, 3] = IGNORE  # a padded step
    plain, steps, correct = window_loss(logits, targets)
    ones, steps_w, correct_w = window_loss(logits, targets, torch.ones(3, 4))
    assert float(ones) == pytest.approx(float(plain), rel=1e-6)
    assert (steps_w, correct_w.tolist()) == (steps, correct.tolist())
    weights = torch.ones(3, 4)
    weights[0, 1] = 0.0
    masked = targets.clone()
    masked[0, 1] = IGNORE
    assert float(window_loss(logits, targets, weights)[0]) == pytest.approx(
        float(window_loss(logits, masked)[0]), rel=1e-6
    )
    weights[1, 0] = 3.0  # a keyframe counts three times
    per_token = torch.nn.functional.cross_entropy(
        logits.reshape(-1, 7), targets.reshape(-1), ignore_index=IGNORE, reduction="none"
    ).reshape(3, 4, 2)
    scored = (targets != IGNORE).float()
    expected = (per_token * weights[..., None] * scored).sum() / (
        weights[..., None] * scored
    ).sum()
    assert float(window_loss(logits, targets, weights)[0]) == pytest.approx(float(expected))


def test_the_config_refuses_a_weight_below_one(tmp_path):
    with pytest.raises(ValueError, match="keyframe_weight"):
        TrainConfig(data=(tmp_path,), out_dir=tmp_path, keyframe_weight=0.5)
    with pytest.raises(ValueError, match="keyframe_min_change_bins"):
        TrainConfig(data=(tmp_path,), out_dir=tmp_path, keyframe_min_change_bins=0)


def test_a_run_trains_with_keyframe_weights(training_store, recorded_episodes, tmp_path):
    messages = []
    config = TrainConfig(
        data=(),
        out_dir=tmp_path,
        store_dir=training_store.folder,
        val_fraction=0.3,
        max_steps=4,
        warmup_steps=1,
        augment=None,
        threads=2,
        keyframe_weight=4.0,
    )
    summary = train(config, say=messages.append)
    assert summary["training"]["steps"] == 4
    (said,) = [m for m in messages if m.startswith("keyframe weight 4")]
    keyframes, ticks = map(int, re.search(r"on (\d+) of (\d+) training ticks", said).groups())
    assert 0 < keyframes < ticks
