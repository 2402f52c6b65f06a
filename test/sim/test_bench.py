"""`rt-ros sim-bench`: the measurement runs and reports positive rates."""

from __future__ import annotations

import argparse

import pytest

pytest.importorskip("mujoco")

from rt_ros.sim.bench import add_subcommands, measure


def test_measure_reports_rates():
    result = measure(seconds_simulated=0.5, frames=2, width_px=64, height_px=48, render=False)
    assert result.physics_steps_per_s > 0
    assert result.physics_real_time_factor > 0
    assert result.controlled_real_time_factor > 0
    assert result.camera_frames_per_s is None


def test_subcommand_parses():
    parser = argparse.ArgumentParser(prog="rt-ros")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sim-bench", "--seconds", "2", "--no-render"])
    assert args.seconds == 2.0
    assert args.no_render
    assert callable(args.func)
