"""Grasp precision: the expert closes on its grasp point, a gripper closed where the episode
starts misses by the distance to the object, the summaries count what they say, and the command
writes its figures for a bundle."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="grasp precision needs the sim extra (mujoco)")

from rt_ros.cli import main
from rt_ros.eval.grasp_precision import (
    ON_TARGET_M,
    EpisodeGrasps,
    GraspAttempt,
    grasp_onsets,
    measure_episode,
    summarise,
)
from rt_ros.sim.expert import Intent, ScriptedExpert
from rt_ros.sim.tasks import get_task
from rt_ros.sim.world import SimWorld

SEEDS = (100_000, 100_001)


@pytest.fixture(scope="module")
def world():
    return SimWorld()


class _ClosesAtOnce:
    """Closes the gripper where the arm starts, holds still, and ends the episode on tick 3."""

    def __init__(self) -> None:
        self.expert = ScriptedExpert()
        self.space = self.expert.space

    def reset(self, task) -> None:
        self.ticks = 0

    def __call__(self, world):
        self.ticks += 1
        mode = "terminate" if self.ticks > 3 else "arm"
        return self.expert.encode(Intent(np.zeros(3), np.zeros(3), 1.0, mode))


def test_onsets_are_the_ticks_the_command_closes():
    assert grasp_onsets([-1.0, -1.0, 1.0, 1.0, -1.0, 0.9, 1.0]) == [2, 5]
    assert grasp_onsets([1.0, 1.0]) == [0]
    assert grasp_onsets([-1.0, 0.5, 0.0]) == []  # 0.5 is not above the threshold
    assert grasp_onsets([]) == []


@pytest.mark.parametrize("family", ["pick", "move_near"])
def test_the_expert_closes_on_its_grasp_point(world, family):
    for seed in SEEDS:
        episode = measure_episode(world, family, seed, ScriptedExpert())
        assert episode.success
        first = episode.first
        assert first is not None
        # Its position tolerance is 5 mm; the tool lags the command by a little.
        assert first.horizontal_m < 0.01, first
        assert abs(first.height_m) < 0.01, first
        assert first.nearest == episode.target
        assert first.closest_before_m <= first.horizontal_m
        assert not first.drifted_off


def test_a_gripper_closed_where_the_arm_starts_misses_by_the_distance(world):
    episode = measure_episode(world, "pick", SEEDS[0], _ClosesAtOnce())
    assert not episode.success
    assert [attempt.tick for attempt in episode.attempts] == [0]
    world.reset(SEEDS[0], get_task("pick"), "seen")
    tool, _ = world.ee_pose()
    target = world.to_base(world.object_position(episode.target))
    assert episode.first.horizontal_m == pytest.approx(
        math.hypot(*(tool[:2] - target[:2])), abs=0.005
    )
    assert episode.first.horizontal_m > 0.1
    assert episode.first.closest_before_m == episode.first.horizontal_m  # its very first tick


def _episode(family, target, success, *offsets, closest_before_m=None):
    attempts = tuple(
        GraspAttempt(10 * i, f, lat, 0.01, near, closest_before_m or math.hypot(f, lat))
        for i, (f, lat, near) in enumerate(offsets)
    )
    return EpisodeGrasps(family, 0, target, success, 20, attempts)


def test_summaries_count_what_they_say():
    episodes = [
        _episode("pick", "apple", True, (0.01, 0.0, "apple")),  # on target
        _episode("pick", "apple", False, (0.03, 0.04, "apple"), closest_before_m=0.01),  # drifted
        _episode("pick", "apple", False, (0.0, 0.2, "sponge")),  # another object
        _episode("pick", "apple", False),  # never closed
        # two attempts missing forward both times: a bias, not noise
        _episode("pick", "apple", False, (0.04, 0.0, "apple"), (0.03, 0.01, "apple")),
        _episode("move_near", "red_can", False, (0.03, 0.0, "red_can"), (-0.03, 0.0, "red_can")),
    ]
    pick, move_near = summarise(episodes)
    assert (pick.family, pick.episodes, pick.successes) == ("pick", 5, 1)
    assert pick.never_closed == 1
    assert pick.on_other_object == 1
    assert pick.on_target == 1
    assert pick.drifted_off == 1
    assert pick.first_horizontal_cm[1] == pytest.approx(np.median([1.0, 5.0, 20.0, 4.0]))
    assert pick.attempts_mean == pytest.approx(5 / 5)
    assert (pick.retried, pick.retried_same_side) == (1, 1)
    assert (move_near.retried, move_near.retried_same_side) == (1, 0)
    low, high = pick.on_target_ci95
    assert low < 1 / 5 < high
    assert pytest.approx(0.02) == ON_TARGET_M


def test_only_top_down_grasp_families_are_measured(world):
    with pytest.raises(ValueError, match="knock_over"):
        measure_episode(world, "knock_over", SEEDS[0], ScriptedExpert())


def test_the_command_writes_its_figures(tiny_bundle, tmp_path):
    code = main(
        ["grasp-precision", "--model", str(tiny_bundle), "--families", "pick", "--episodes", "1",
         "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    payload = json.loads((tmp_path / "grasp_precision.json").read_text())
    assert [(row["who"], row["family"]) for row in payload["summary"]] == [
        ("policy", "pick"),
        ("expert", "pick"),
    ]
    assert payload["summary"][1]["on_target"] == 1
    assert len(payload["episodes"]["policy"]) == 1
    assert (tmp_path / "grasp_offsets.png").stat().st_size > 0
    motion = payload["image_motion_at_targets"]
    assert motion["input_size_px"] == [128, 128]
    assert 0 < motion["median"]["forward_up_angle_deg"] < 90
    assert main(["grasp-precision", "--episodes", "0"]) != 0
    assert main(["grasp-precision", "--episodes", "1", "--expert-approach-gain", "0"]) != 0
