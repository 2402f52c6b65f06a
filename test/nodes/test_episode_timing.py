"""Telling an episode the machine decided from one the model decided (pure logic, no ROS)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from rt_ros.eval.closed_loop import EpisodeResult
from rt_ros.eval.report import summarise, timing_note
from rt_ros.nodes.episode_timing import EpisodeTiming

# A healthy 40-step pick at 3 Hz through the nodes: one stop at the start (the instruction came
# before the first fresh frame), one command refused (the first inference is the slowest).
HEALTHY = EpisodeTiming(
    steps=40,
    stale_ticks=1,
    held_ticks=0,
    missed_ticks=0,
    frames_rejected_stale=1,
    commands_rejected_stale=1,
    camera_frames=131,
    camera_rate_hz=10.0,
    wall_time_s=13.5,
)


def test_a_healthy_episode_is_not_degraded():
    assert HEALTHY.problems() == []
    assert not HEALTHY.degraded
    assert HEALTHY.lost_ticks == 1
    assert HEALTHY.camera_rate_achieved_hz == pytest.approx(131 / 13.5)


def test_lost_ticks_beyond_the_allowance_degrade_the_episode():
    # 2 + 5% of (40 steps + lost): 4 lost ticks pass, 5 do not.
    assert not replace(HEALTHY, stale_ticks=2, held_ticks=1, missed_ticks=1).degraded
    starved = replace(HEALTHY, stale_ticks=3, held_ticks=1, missed_ticks=1)
    assert starved.degraded
    (problem,) = starved.problems()
    assert "5 control ticks lost" in problem
    assert "40 steps" in problem


def test_commands_refused_as_stale_degrade_the_episode():
    late = replace(HEALTHY, commands_rejected_stale=3)
    assert late.problems() == ["the driver refused 3 commands as stale"]


def test_a_camera_below_its_rate_degrades_the_episode_unless_too_short_to_tell():
    slow = replace(HEALTHY, camera_frames=66)  # 4.9 Hz of 10: the render budget gave way
    assert slow.problems() == ["camera frames arrived at 4.9 Hz of 10"]
    assert not replace(HEALTHY, camera_frames=100).degraded  # 7.4 Hz of 10
    assert not replace(slow, camera_frames=3, wall_time_s=2.0).degraded


def test_the_crawl_seen_with_two_episodes_on_two_cores_is_called_degraded():
    # Counters of the kind an overloaded worker showed: frames stale on arrival, commands tens
    # of seconds old, the camera at a fraction of its rate.
    crawl = replace(
        HEALTHY,
        steps=21,
        stale_ticks=30,
        held_ticks=12,
        missed_ticks=40,
        frames_rejected_stale=33,
        commands_rejected_stale=30,
        camera_frames=45,
        wall_time_s=480.0,
    )
    assert len(crawl.problems()) == 3


def test_an_instant_episode_has_no_camera_rate_and_bad_counters_are_refused():
    instant = replace(HEALTHY, wall_time_s=0.0)
    assert math.isnan(instant.camera_rate_achieved_hz)
    assert not instant.degraded
    with pytest.raises(ValueError, match="stale_ticks"):
        replace(HEALTHY, stale_ticks=-1)
    with pytest.raises(ValueError, match="camera_rate_hz"):
        replace(HEALTHY, camera_rate_hz=0.0)


def _result(seed: int, degraded: bool | None) -> EpisodeResult:
    return EpisodeResult(
        family="pick",
        split="seen",
        seed=seed,
        instruction="pick up the coke can",
        success=False,
        steps=30,
        terminated=True,
        wall_time_s=12.0,
        degraded=degraded,
    )


def test_the_report_counts_degraded_episodes_and_says_so():
    rows = summarise([_result(1, False), _result(2, True), _result(3, True)])
    assert rows[0].degraded_episodes == 2
    note = timing_note(rows)
    assert note is not None
    assert note.startswith("Timing: 2 of 3 episodes")
    assert "--jobs" in note
    healthy = summarise([_result(1, False), _result(2, False)])
    assert healthy[0].degraded_episodes == 0
    assert timing_note(healthy) is None
    direct = summarise([_result(1, None)])
    assert direct[0].degraded_episodes is None
    assert timing_note(direct) is None
