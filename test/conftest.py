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


@pytest.fixture(scope="session")
def shipped_bundle() -> Path:
    """The package's models/rt1-tiny, exported from the shipped weights if missing or stale
    (as `rt-ros export --shipped` does; exporting needs torch)."""
    from rt_ros.model.shipped import (
        DEFAULT_BUNDLE,
        bundle_is_current,
        ensure_default_bundle,
        shipped_weights,
    )
    from rt_ros.paths import share_dir

    if not bundle_is_current(share_dir() / DEFAULT_BUNDLE, shipped_weights()):
        pytest.importorskip("torch", reason="exporting the shipped weights needs the train extra")
    return ensure_default_bundle()
