"""`rt-ros expert-eval`: the subcommand parses and reports a table."""

from __future__ import annotations

import argparse

import pytest

pytest.importorskip("mujoco")

from rt_ros.sim.expert_eval import add_subcommands, evaluate, report_table


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rt-ros")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser


def test_subcommand_parses_its_options():
    args = _parser().parse_args(
        ["expert-eval", "--family", "pick", "--family", "drawer", "--episodes", "3", "--jobs", "2"]
    )
    assert args.family == ["pick", "drawer"]
    assert args.episodes == 3
    assert args.jobs == 2
    assert callable(args.func)


def test_evaluate_reports_success_per_family():
    reports = evaluate(["knock_over"], episodes=1)
    assert len(reports) == 1
    report = reports[0]
    assert report.family == "knock_over"
    assert len(report.results) == 1
    assert report.success_rate == 1.0
    assert report_table(reports).row_count == 1


def test_the_approach_gain_reaches_the_expert():
    deadbeat, geometric = (
        evaluate(["pick"], episodes=1, first_seed=3, approach_gain=gain)[0] for gain in (1.0, 0.5)
    )
    assert deadbeat.successes == geometric.successes == 1
    assert geometric.results[0].steps > deadbeat.results[0].steps


def test_a_bad_approach_gain_is_refused_before_any_episode(capsys):
    args = _parser().parse_args(["expert-eval", "--approach-gain", "2", "--episodes", "1"])
    assert args.func(args) == 2
    assert "approach_gain" in capsys.readouterr().err


def test_unknown_family_is_refused_by_name(capsys):
    args = _parser().parse_args(["expert-eval", "--family", "juggle", "--episodes", "1"])
    assert args.func(args) == 2
    assert "juggle" in capsys.readouterr().err
