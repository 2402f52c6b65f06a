"""Counterfactual labels: for every other object a pick, knock_over or move_near instruction
could have named, the same frames of the expert's approach, the instruction re-worded with the
same template, and the expert's own labels for that object; in the demonstration's split. For
move_near's anchor, the same over the carry, after the ticks that lead to it."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="collecting needs the sim extra (mujoco)")
pytest.importorskip("mcap_ros2", reason="collecting needs the sim extra (mcap-ros2-support)")

from rt_ros.runtime.action_space import load_action_space
from rt_ros.sim.expert import ScriptedExpert
from rt_ros.sim.objects import OBJECTS
from rt_ros.sim.tasks import get_task
from rt_ros.sim.world import SimWorld
from rt_ros.train.bag_reader import BagReader
from rt_ros.train.collect import CollectSettings, collect_demonstrations
from rt_ros.train.counterfactual import (
    ANCHOR_FAMILIES,
    ANCHOR_ROLE,
    CARRY_HISTORY_TICKS,
    COUNTERFACTUAL_FAMILIES,
    STANDING_TILT_RAD,
    alternative_tasks,
    check_counterfactual_family,
    instruction_wording,
    wording_rng,
)
from rt_ros.train.topic_map import load_topic_map
from rt_ros.train.training_store import validation_split

SEEDS = range(0, 4)


@pytest.fixture(scope="module")
def world():
    return SimWorld()


@pytest.mark.parametrize("family", sorted(COUNTERFACTUAL_FAMILIES))
def test_alternatives_are_the_other_standing_candidates_worded_alike(world, family):
    found = 0
    for seed in SEEDS:
        task = world.reset(seed, get_task(family), "seen")
        template, words = instruction_wording(task, "seen")
        assert template.format(**words) == task.instruction
        alternatives = alternative_tasks(task, world, "seen", np.random.default_rng(seed))
        present = {
            name
            for name in COUNTERFACTUAL_FAMILIES[family]
            if name not in (task.target, getattr(task, "anchor", None))
            and not world.is_parked(name)
            and world.object_tilt_rad(name) <= STANDING_TILT_RAD
        }
        assert {alternative.target for alternative in alternatives} <= present
        placeholder = "target" if family == "move_near" else "object"
        for alternative in alternatives:
            assert type(alternative) is type(task)
            assert getattr(alternative, "anchor", None) == getattr(task, "anchor", None)
            wordings = [
                template.format(**(words | {placeholder: word}))
                for word in OBJECTS[alternative.target].words
            ]
            assert alternative.instruction in wordings
            assert alternative.in_split(world, "seen")
        found += len(alternatives)
    assert found > 0


def test_families_without_one_target_among_alike_objects_are_refused(tmp_path):
    with pytest.raises(
        ValueError, match="counterfactual target labels exist for pick, knock_over, move_near"
    ):
        CollectSettings("drawer", tmp_path, counterfactual=True)
    with pytest.raises(ValueError, match="no --policy"):
        CollectSettings("pick", tmp_path, policy_path=tmp_path, counterfactual=True)


def test_a_bag_holds_one_episode_per_alternative_with_its_expert_labels(tmp_path, world):
    demos = collect_demonstrations("pick", episodes=1, out_dir=tmp_path / "demo", seed_start=2)
    made = collect_demonstrations(
        "pick", episodes=1, out_dir=tmp_path / "cf", seed_start=2, counterfactual=True
    )[0]
    assert made.path.name == demos[0].path.name == "pick_seed2.mcap"
    reader = BagReader(load_topic_map(), load_action_space())
    demo = next(reader.episodes(demos[0].path))
    episodes = list(reader.episodes(made.path))
    assert len(episodes) == made.episodes >= 1
    info = episodes[0].info
    assert info["source"] == "counterfactual"
    assert info["instruction"] == demo.instruction
    # The first tick: each alternative's label is the expert's for it on the reset layout.
    task = world.reset(2, get_task("pick"), "seen")
    for episode, instruction, target in zip(
        episodes, info["instructions"], info["targets"], strict=True
    ):
        assert episode.instruction == instruction != demo.instruction
        assert episode.success is None
        assert validation_split(episode.source, 0.3) == validation_split(str(demo.source), 0.3)
        # The demonstration's frames, over its approach only.
        assert 1 <= len(episode) < len(demo)
        for frame, demo_frame in zip(episode.frames, demo.frames, strict=False):
            np.testing.assert_array_equal(frame, demo_frame)
        labeller = ScriptedExpert()
        labeller.reset(type(task)(instruction=instruction, target=target))
        np.testing.assert_array_equal(episode.tokens[0], labeller(world).tokens)
    assert json.loads(json.dumps(info))["steps"] == len(episodes[0])


def test_first_ticks_only_include_the_named_object_and_end_early(tmp_path, world):
    collected = collect_demonstrations(
        "knock_over", episodes=6, out_dir=tmp_path, seed_start=3, counterfactual=True,
        counterfactual_ticks=2,
    )  # fmt: skip
    assert any(episode.path is None for episode in collected)  # a can alone on the counter
    made = next(episode for episode in collected if episode.path is not None)
    seed = made.result.seed
    reader = BagReader(load_topic_map(), load_action_space())
    episodes = list(reader.episodes(made.path))
    info = episodes[0].info
    assert len(episodes) == made.episodes == len(info["targets"]) >= 2
    assert made.result.steps == 2  # it ends at its last labelled tick
    task = world.reset(seed, get_task("knock_over"), "seen")
    assert (episodes[0].instruction, info["targets"][0]) == (task.instruction, task.target)
    for episode, target in zip(episodes, info["targets"], strict=True):
        assert len(episode) == 2
        labeller = ScriptedExpert()
        labeller.reset(type(task)(instruction=episode.instruction, target=target))
        np.testing.assert_array_equal(episode.tokens[0], labeller(world).tokens)
    with pytest.raises(ValueError, match="counterfactual_ticks needs counterfactual labels"):
        CollectSettings("pick", tmp_path, counterfactual_ticks=1)
    with pytest.raises(ValueError, match=r"counterfactual_ticks \(0\) must be >= 1"):
        CollectSettings("pick", tmp_path, counterfactual=True, counterfactual_ticks=0)


def test_anchor_alternatives_rename_the_anchor_only(world, tmp_path):
    found = 0
    for seed in SEEDS:
        task = world.reset(seed, get_task("move_near"), "seen")
        template, words = instruction_wording(task, "seen")
        alternatives = alternative_tasks(
            task, world, "seen", wording_rng(seed, ANCHOR_ROLE), ANCHOR_ROLE
        )
        present = {
            name
            for name in ANCHOR_FAMILIES["move_near"]
            if name not in (task.target, task.anchor)
            and not world.is_parked(name)
            and world.object_tilt_rad(name) <= STANDING_TILT_RAD
        }
        assert {alternative.anchor for alternative in alternatives} <= present
        for alternative in alternatives:
            assert alternative.target == task.target
            wordings = [
                template.format(**(words | {"anchor": word}))
                for word in OBJECTS[alternative.anchor].words
            ]
            assert alternative.instruction in wordings
            assert alternative.in_split(world, "seen")
        found += len(alternatives)
    assert found > 0
    with pytest.raises(ValueError, match="counterfactual anchor labels exist for move_near"):
        CollectSettings("pick", tmp_path, counterfactual=True, counterfactual_role="anchor")
    with pytest.raises(ValueError, match="counterfactual_role needs counterfactual labels"):
        CollectSettings("move_near", tmp_path, counterfactual_role="anchor")
    with pytest.raises(ValueError, match="role must be one of target, anchor"):
        check_counterfactual_family("move_near", "goal")


def test_anchor_labels_cover_the_carry_after_its_history(tmp_path, world):
    collected = collect_demonstrations(
        "move_near", episodes=3, out_dir=tmp_path, seed_start=0, counterfactual=True,
        counterfactual_ticks=2, counterfactual_role="anchor",
    )  # fmt: skip
    made = [episode for episode in collected if episode.path is not None]
    assert made
    reader = BagReader(load_topic_map(), load_action_space())
    shifted = 0
    for bag in made:
        episodes = list(reader.episodes(bag.path))
        info = episodes[0].info
        assert info["role"] == "anchor"
        assert len(episodes) == bag.episodes == len(info["anchors"]) >= 2
        task = world.reset(bag.result.seed, get_task("move_near"), "seen")
        # The layout's own episode first, then one per other anchor; the target never changes.
        assert (episodes[0].instruction, info["anchors"][0]) == (task.instruction, task.anchor)
        own = episodes[0]
        assert len(own) == CARRY_HISTORY_TICKS + 2
        for episode in episodes[1:]:
            assert len(episode) == len(own)
            for frame, own_frame in zip(episode.frames, own.frames, strict=True):
                np.testing.assert_array_equal(frame, own_frame)
            # Before the carry, the expert for another anchor grasps and lifts the same way.
            for tokens, own_tokens in zip(
                episode.tokens[:CARRY_HISTORY_TICKS], own.tokens[:CARRY_HISTORY_TICKS],
                strict=True,
            ):  # fmt: skip
                np.testing.assert_array_equal(tokens, own_tokens)
            shifted += not np.array_equal(episode.tokens[-1], own.tokens[-1])
    # While carrying, another anchor means another way to go.
    assert shifted > 0
