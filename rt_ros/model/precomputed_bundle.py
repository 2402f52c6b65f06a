"""A copy of a bundle that knows a fixed set of instructions by heart.

A robot that only ever hears a known list of instructions does not need the 90 MB sentence
encoder: each instruction's embedding is computed once, here, with the bundle's own encoder, and
the copy's manifest names a `precomputed` table (rt_ros.runtime.instruction_encoder) in its place.
The graphs are copied unchanged (same sha256), so the copy computes exactly what the source does
for those instructions and refuses any other one with an error naming the closest known ones.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from rt_ros.runtime.errors import BundleError, ConfigError
from rt_ros.runtime.instruction_encoder import build_instruction_encoder
from rt_ros.runtime.manifest import BundleManifest, sha256_of
from rt_ros.runtime.model_bundle import ModelBundle
from rt_ros.runtime.onnx_session import SessionConfig

PRECOMPUTED_FILE = "instructions.npz"


def distinct_instructions(texts: Iterable[str]) -> list[str]:
    """The instructions stripped of outer whitespace, first occurrence first, without repeats;
    ConfigError for an empty one."""
    kept: dict[str, None] = {}
    for text in texts:
        stripped = text.strip()
        if not stripped:
            raise ConfigError("an instruction to precompute is empty or whitespace only")
        kept.setdefault(stripped, None)
    if not kept:
        raise ConfigError("no instructions to precompute")
    return list(kept)


def precompute_instructions(source: Path, out: Path, instructions: Iterable[str]) -> Path:
    """Write to `out` a copy of the bundle at `source` whose instruction encoder is a table of
    `instructions`; returns `out`. The copy is loaded back before returning, checksums included."""
    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise ConfigError(f"--out {out} is the source bundle; write the copy elsewhere")
    texts = distinct_instructions(instructions)
    # Only the source's encoder runs here: its graphs are copied, not opened.
    manifest = BundleManifest.load(source)
    manifest.verify_files(source)
    source_encoder = build_instruction_encoder(manifest.instruction_encoder, source)
    embeddings = np.stack([source_encoder.encode(text) for text in texts])
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / PRECOMPUTED_FILE, texts=np.array(texts), embeddings=embeddings)
    sha256 = {}
    for name in manifest.graphs.values():
        shutil.copy2(source / name, out / name)
        sha256[name] = manifest.sha256[name]
    sha256[PRECOMPUTED_FILE] = sha256_of(out / PRECOMPUTED_FILE)
    encoder = {
        "kind": "precomputed",
        "name": source_encoder.name,
        "file": PRECOMPUTED_FILE,
        "instructions": len(texts),
    }
    provenance = {
        **manifest.provenance,
        "instructions_precomputed": {
            "from_bundle": str(source),
            "encoder": dict(manifest.instruction_encoder),
        },
    }
    copy = dataclasses.replace(
        manifest, instruction_encoder=encoder, sha256=sha256, provenance=provenance
    )
    copy.write(out)
    try:
        ModelBundle.load(out, SessionConfig(providers=("cpu",)))
    except BundleError as error:  # pragma: no cover - a bug here, not bad input
        raise BundleError(f"{out}: the precomputed copy does not load: {error}") from error
    return out
