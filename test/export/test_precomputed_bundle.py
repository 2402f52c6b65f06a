"""A bundle copy with its instructions precomputed: the source's actions, nothing else known."""

from __future__ import annotations

import numpy as np
import pytest

from rt_ros.cli import main
from rt_ros.model.precomputed_bundle import PRECOMPUTED_FILE, precompute_instructions
from rt_ros.runtime.errors import ConfigError, InstructionError
from rt_ros.runtime.manifest import BundleManifest
from rt_ros.runtime.onnx_session import SessionConfig
from rt_ros.runtime.policy import Policy

KNOWN = ("pick coke can", "open the top drawer")


def _frames(count: int) -> list[np.ndarray]:
    generator = np.random.default_rng(7)
    return [generator.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(count)]


def _logits(bundle, instruction: str, frames: list[np.ndarray]) -> list[np.ndarray]:
    policy = Policy.from_bundle(bundle, SessionConfig(providers=("cpu",)))
    policy.reset(instruction)
    logits = []
    for index, frame in enumerate(frames):
        policy.step(frame, stamp_s=0.2 * index)
        logits.append(policy.last_logits.copy())
    return logits


def test_the_copy_acts_as_the_source_on_known_instructions_and_refuses_others(
    tiny_bundle, tmp_path
):
    out = precompute_instructions(tiny_bundle, tmp_path / "fixed", [*KNOWN, " pick coke can "])
    manifest = BundleManifest.load(out)
    assert manifest.instruction_encoder["kind"] == "precomputed"
    assert manifest.instruction_encoder["instructions"] == 2  # stripped duplicates count once
    assert not (out / "instruction_encoder.onnx").exists()
    assert set(manifest.sha256) == {*manifest.graphs.values(), PRECOMPUTED_FILE}
    frames = _frames(8)
    for instruction in KNOWN:
        expected = _logits(tiny_bundle, instruction, frames)
        for got, want in zip(_logits(out, instruction, frames), expected, strict=True):
            np.testing.assert_array_equal(got, want)
    policy = Policy.from_bundle(out, SessionConfig(providers=("cpu",)))
    with pytest.raises(InstructionError, match="pick coke can"):
        policy.reset("pick the coke can")


def test_bad_requests_are_refused_before_anything_is_written(tiny_bundle, tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        precompute_instructions(tiny_bundle, tmp_path / "a", ["pick coke can", "   "])
    with pytest.raises(ConfigError, match="no instructions"):
        precompute_instructions(tiny_bundle, tmp_path / "b", [])
    with pytest.raises(ConfigError, match="source bundle"):
        precompute_instructions(tiny_bundle, tiny_bundle, KNOWN)
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_the_command_reads_an_instructions_file(tiny_bundle, tmp_path):
    listing = tmp_path / "instructions.txt"
    listing.write_text("# the robot's vocabulary\npick coke can\n\nopen the top drawer\n")
    out = tmp_path / "fixed"
    code = main(
        ["precompute-instructions", "--model", str(tiny_bundle), "--out", str(out),
         "--instructions-file", str(listing), "--bench-instruction"]
    )  # fmt: skip
    assert code == 0
    with np.load(out / PRECOMPUTED_FILE) as table:
        assert table["texts"].tolist() == list(KNOWN)  # the bench's "pick coke can" is known
    missing = tmp_path / "missing.txt"
    refused = main(
        ["precompute-instructions", "--model", str(tiny_bundle), "--out", str(tmp_path / "x"),
         "--instructions-file", str(missing)]
    )  # fmt: skip
    assert refused == 2
