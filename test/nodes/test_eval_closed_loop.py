"""`rt-ros eval` through the nodes on the shipped model, as CI runs it: a few episodes, the
report written, the scripted expert beside it. The model's success is reported, not asserted."""

from __future__ import annotations

import csv

import pytest

pytest.importorskip("mujoco", reason="evaluation needs the sim extra (mujoco)")
pytest.importorskip("rclpy", reason="needs rclpy (the ros extra or a ROS 2 install)")
pytest.importorskip("torch", reason="exporting the shipped weights needs the train extra")

from rt_ros.eval.closed_loop import EVAL_SEED_START, EvalSettings, evaluate
from rt_ros.eval.report import markdown_table, write_report
from rt_ros.model.shipped import ensure_default_bundle

pytestmark = pytest.mark.ros


def test_eval_through_the_nodes_reports_the_shipped_model(tmp_path, ros_domain_id, capsys):
    bundle = ensure_default_bundle()
    settings = EvalSettings(
        model_path=bundle,
        out_dir=tmp_path,
        families=("pick", "knock_over"),
        splits=("seen",),
        episodes=1,
        domain_base=ros_domain_id,
    )
    results = evaluate(settings)
    rows = write_report(results, tmp_path, "rt-ros eval in CI (shipped rt1-tiny)")
    with capsys.disabled():
        print("\n" + markdown_table(rows))
    assert [(r.family, r.split, r.seed) for r in results] == [
        ("pick", "seen", EVAL_SEED_START),
        ("knock_over", "seen", EVAL_SEED_START),
    ]
    for result in results:
        assert result.steps >= 1
        assert result.instruction
        assert result.expert_success is True  # the expert solves these seeds
        assert (result.video is None) == result.success
        # The timing counters come back (whether this machine kept the timing is reported).
        assert isinstance(result.degraded, bool)
        assert result.lost_ticks >= 0
        assert result.stale_commands >= 0
        assert result.camera_rate_hz > 0
    with open(tmp_path / "summary.csv") as file:
        summary = list(csv.DictReader(file))
    assert len(summary) == 2
    assert sum(int(row["degraded_episodes"]) for row in summary) == sum(
        r.degraded for r in results
    )
    assert all(float(row["camera_rate_hz_median"]) > 0 for row in summary)
    with open(tmp_path / "episodes.csv") as file:
        assert {"degraded", "lost_ticks", "stale_commands"} <= set(csv.DictReader(file).fieldnames)
    assert (tmp_path / "success.png").stat().st_size > 5_000
    assert "| pick | seen | 1 |" in (tmp_path / "summary.md").read_text()
