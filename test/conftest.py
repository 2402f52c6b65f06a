"""Shared fixtures: exported model bundles, made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random rt1-tiny bundle exported with the real exporter (needs torch)."""
    pytest.importorskip("torch", reason="exporting a bundle needs the train extra (torch)")
    from rt_ros.model.export import export_bundle

    folder = tmp_path_factory.mktemp("rt1-tiny")
    export_bundle(folder, "rt1-tiny", seed=0)
    return folder
