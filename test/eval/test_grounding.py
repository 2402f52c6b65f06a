"""The grounding figures: a policy blind to the object named scores chance and no shift; one
that acts as the expert does for the object named scores every choice and the expert's shift;
so for move_near's anchor at the first carrying tick; the command writes its figures for a
bundle."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="grounding needs the sim extra (mujoco)")

from rt_ros.cli import main
from rt_ros.eval.grounding import (
    FamilyGrounding,
    _half_choice,
    grounding_moment,
    measure_grounding,
    score_moment,
    translation_indices,
)
from rt_ros.runtime.action_space import load_action_space
from rt_ros.sim.expert import ExpertConfig, ScriptedExpert
from rt_ros.sim.objects import OBJECTS
from rt_ros.sim.world import SimWorld
from rt_ros.train.counterfactual import ANCHOR_ROLE, CARRY_HISTORY_TICKS, carrying

SEEDS = range(100_000, 100_004)
FAMILIES = ("pick", "knock_over", "move_near")


class _Blind:
    """The expert's first action for the layout's own task, whatever the instruction says."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world
        self.action_space = load_action_space()

    def reset(self, instruction: str) -> None:
        self.instruction = instruction

    def step(self, rgb_frame, stamp_s):
        expert = ScriptedExpert(self.action_space)
        expert.reset(self.world.task)
        return expert(self.world)


class _Grounded(_Blind):
    """The expert's first action for the object the instruction names first."""

    def step(self, rgb_frame, stamp_s):
        text = self.instruction
        found = [
            (text.find(word), name)
            for name, obj in OBJECTS.items()
            for word in obj.words
            if word in text
        ]
        target = min(found)[1]
        expert = ScriptedExpert(self.action_space)
        expert.reset(dataclasses.replace(self.world.task, target=target, instruction=text))
        return expert(self.world)


@pytest.fixture(scope="module")
def world():
    return SimWorld()


def test_a_blind_policy_scores_chance_and_no_shift(world):
    for result in measure_grounding(_Blind(world), world, FAMILIES, SEEDS):
        assert result.layouts == len(SEEDS)
        assert result.pairs > 0
        assert result.choice_rate == pytest.approx(0.5, abs=0.25)
        assert result.policy_shift_bins == [0.0] * result.pairs
        assert np.mean(result.expert_shift_bins) > 0.5


def test_a_policy_acting_for_the_object_named_scores_every_choice(world):
    for result in measure_grounding(_Grounded(world), world, FAMILIES, SEEDS):
        assert result.pairs > 0
        # A pair whose two expert actions coincide is a tie (half a choice each way).
        ties = sum(shift == 0.0 for shift in result.expert_shift_bins)
        assert result.choice_rate == pytest.approx(1.0 - ties / (2 * result.pairs))
        assert result.policy_shift_bins == result.expert_shift_bins


class _Replay:
    """The moment's expert action, for the candidate its instruction names (grounded) or for
    the layout's own task whatever it says (blind)."""

    def __init__(self, moment, grounded: bool) -> None:
        self.moment = moment
        self.grounded = grounded
        self.action_space = load_action_space()

    def reset(self, instruction: str) -> None:
        own = self.moment.candidates[0][1]
        named = {task.instruction: action for task, action in self.moment.candidates}
        self.action = named[instruction] if self.grounded else own

    def step(self, rgb_frame, stamp_s):
        return self.action


def test_anchor_moments_are_the_first_carrying_tick(world):
    space = load_action_space()
    indices = translation_indices(space)
    blind, grounded = FamilyGrounding("move_near"), FamilyGrounding("move_near")
    for seed in SEEDS:
        moment = grounding_moment(world, "move_near", seed, space, "seen", ANCHOR_ROLE)
        if moment is None:
            continue
        own = moment.candidates[0][0]
        # The world stands where the moment was taken: the target held up, to be carried.
        assert carrying(world, own.target, ExpertConfig())
        assert len(moment.states) == CARRY_HISTORY_TICKS + 1
        assert {task.target for task, _ in moment.candidates} == {own.target}
        assert len({task.anchor for task, _ in moment.candidates}) == len(moment.candidates)
        score_moment(_Replay(moment, grounded=False), moment, indices, blind)
        score_moment(_Replay(moment, grounded=True), moment, indices, grounded)
    assert blind.pairs == grounded.pairs > 0
    assert blind.policy_shift_bins == [0.0] * blind.pairs
    assert blind.choice_rate == pytest.approx(0.5, abs=0.25)
    ties = sum(shift == 0.0 for shift in grounded.expert_shift_bins)
    assert grounded.choice_rate == pytest.approx(1.0 - ties / (2 * grounded.pairs))
    assert grounded.policy_shift_bins == grounded.expert_shift_bins
    # Carrying towards another anchor is another direction.
    assert np.mean(grounded.expert_shift_bins) > 0.5


def test_choices_and_their_interval():
    named, other = np.array([130, 127, 125]), np.array([127, 130, 125])
    assert _half_choice(np.array([130, 128, 125]), named, other) == 2
    assert _half_choice(other, named, other) == 0
    assert _half_choice(np.array([128, 128, 125]), named, other) == 1  # 3 bins from each
    grounding = FamilyGrounding("pick", layouts=3, pairs=5, half_choices=20)
    assert grounding.choice_rate == 1.0
    assert grounding.choice_interval()[1] == 1.0
    assert grounding.to_dict()["choice_ci95"][0] > 0.6


def test_the_command_writes_its_figures(tiny_bundle, tmp_path):
    out = tmp_path / "grounding.json"
    code = main(
        ["grounding", "--model", str(tiny_bundle), "--families", "pick", "--seeds", "2",
         "--json", str(out)]
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["family"] for row in rows] == ["pick"]
    assert rows[0]["layouts"] == 2
    assert 0.0 <= rows[0]["choice"] <= 1.0
    code = main(
        ["grounding", "--model", str(tiny_bundle), "--role", "anchor", "--seeds", "2",
         "--json", str(out)]
    )  # fmt: skip
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["role"] == "anchor"
    assert [row["family"] for row in payload["rows"]] == ["move_near"]
    assert main(["grounding", "--role", "anchor", "--families", "pick"]) != 0
