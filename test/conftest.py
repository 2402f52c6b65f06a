"""Shared fixtures: exported model bundles, made once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# MuJoCo picks its OpenGL backend when first imported (an importorskip may come first): offscreen
# OSMesa unless a display or MUJOCO_GL says otherwise.
if "DISPLAY" not in os.environ:
    os.environ.setdefault("MUJOCO_GL", "osmesa")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random rt1-tiny bundle exported with the real exporter (needs torch)."""
    pytest.importorskip("torch", reason="exporting a bundle needs the train extra (torch)")
    from rt_ros.model.export import export_bundle

    folder = tmp_path_factory.mktemp("rt1-tiny")
    export_bundle(folder, "rt1-tiny", seed=0)
    return folder
