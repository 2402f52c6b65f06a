"""Simulator tests: MuJoCo renders offscreen through OSMesa unless MUJOCO_GL says otherwise.

MUJOCO_GL is read when mujoco is first imported, so it is set here, before any test module.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "osmesa")


@pytest.fixture(scope="session")
def world():
    """One kitchen world shared by the tests of a session (each test resets it)."""
    pytest.importorskip("mujoco", reason="the simulator needs the `sim` extra (mujoco)")
    from rt_ros.sim.world import SimWorld

    sim = SimWorld()
    yield sim
    sim.close()
