"""The model bundle's manifest.yaml: the contract between export/training and the robot.

It says what the graphs expect (image size, history, token sizes, embedding width), how actions are
laid out (the whole action-space profile), which files belong to the bundle with their sha256, and
where the weights came from. Every error names the field and the file.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rt_ros.runtime.action_space import ActionSpace
from rt_ros.runtime.errors import BundleError

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.yaml"
GRAPH_ROLES = ("frame_encoder", "policy")
# Tensor names of the two graphs (fixed by export, checked at load).
IMAGE_INPUT = "image"
EMBEDDING_INPUT = "instruction_embedding"
FRAME_TOKENS = "frame_tokens"
CURRENT_STEP_INPUT = "current_step"
LOGITS_OUTPUT = "action_logits"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ImageSpec:
    """The frame encoder's input: uint8 RGB NHWC; normalisation happens inside the graph."""

    height_px: int
    width_px: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layout: str = "NHWC"
    dtype: str = "uint8"
    color: str = "rgb"
    normalization_in_graph: bool = True


@dataclass(frozen=True)
class BundleManifest:
    """Parsed and field-checked manifest.yaml (graph checks are in `model_bundle`)."""

    preset: str
    image: ImageSpec
    history_length: int
    tokens_per_frame: int
    token_dim: int
    embedding_dim: int
    instruction_encoder: Mapping[str, Any]
    action_space: ActionSpace
    opset: int
    graphs: Mapping[str, str]
    sha256: Mapping[str, str]
    model: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    deviations: tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION

    @property
    def untrained(self) -> bool:
        """Whether the weights are a random initialisation (the exporter's deviation note)."""
        return any("UNTRAINED" in line for line in self.deviations)

    @classmethod
    def load(cls, bundle_dir: Path) -> BundleManifest:
        """Read `bundle_dir/manifest.yaml`; BundleError names a missing or malformed field."""
        path = Path(bundle_dir) / MANIFEST_FILE
        if not path.is_file():
            raise BundleError(f"{path}: manifest is missing (is {bundle_dir} a model bundle?)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise BundleError(f"{path}: not valid YAML: {error}") from error
        if not isinstance(data, dict):
            raise BundleError(f"{path}: expected a mapping at the top level")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = MANIFEST_FILE) -> BundleManifest:
        reader = _FieldReader(data, source)
        version = reader.integer("format_version")
        if version != FORMAT_VERSION:
            raise BundleError(
                f"{source}: format_version {version} is not supported (this rt_ros reads "
                f"{FORMAT_VERSION})"
            )
        image = reader.mapping("image")
        image_reader = _FieldReader(image, source, prefix="image.")
        image_spec = ImageSpec(
            height_px=image_reader.integer("height_px"),
            width_px=image_reader.integer("width_px"),
            mean=image_reader.triple("mean"),
            std=image_reader.triple("std"),
            layout=image_reader.choice("layout", ("NHWC",)),
            dtype=image_reader.choice("dtype", ("uint8",)),
            color=image_reader.choice("color", ("rgb",)),
            normalization_in_graph=image_reader.boolean("normalization_in_graph"),
        )
        encoder = reader.mapping("instruction_encoder")
        embedding_dim = _FieldReader(encoder, source, "instruction_encoder.").integer(
            "embedding_dim"
        )
        graphs = reader.mapping("graphs")
        for role in GRAPH_ROLES:
            if not isinstance(graphs.get(role), str):
                raise BundleError(f"{source}: graphs.{role} must name the ONNX file of that graph")
        try:
            action_space = ActionSpace.from_dict(reader.mapping("action_space"), source=source)
        except ValueError as error:
            raise BundleError(f"{source}: action_space: {error}") from error
        return cls(
            format_version=version,
            preset=reader.string("preset"),
            image=image_spec,
            history_length=reader.integer("history_length"),
            tokens_per_frame=reader.integer("tokens_per_frame"),
            token_dim=reader.integer("token_dim"),
            embedding_dim=embedding_dim,
            instruction_encoder=dict(encoder),
            action_space=action_space,
            opset=reader.integer("opset"),
            graphs={role: str(graphs[role]) for role in GRAPH_ROLES},
            sha256={str(name): str(digest) for name, digest in reader.mapping("sha256").items()},
            model=dict(data.get("model") or {}),
            provenance=dict(data.get("provenance") or {}),
            deviations=tuple(str(line) for line in data.get("deviations") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for YAML, in the order a reader wants to see it."""
        return {
            "format_version": self.format_version,
            "preset": self.preset,
            "image": {
                "height_px": self.image.height_px,
                "width_px": self.image.width_px,
                "layout": self.image.layout,
                "dtype": self.image.dtype,
                "color": self.image.color,
                "mean": list(self.image.mean),
                "std": list(self.image.std),
                "normalization_in_graph": self.image.normalization_in_graph,
            },
            "history_length": self.history_length,
            "tokens_per_frame": self.tokens_per_frame,
            "token_dim": self.token_dim,
            "instruction_encoder": {
                **self.instruction_encoder,
                "embedding_dim": self.embedding_dim,
            },
            "action_space": self.action_space.to_dict(),
            "opset": self.opset,
            "graphs": dict(self.graphs),
            "sha256": dict(self.sha256),
            "model": dict(self.model),
            "provenance": dict(self.provenance),
            "deviations": list(self.deviations),
        }

    def write(self, bundle_dir: Path) -> Path:
        path = Path(bundle_dir) / MANIFEST_FILE
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        return path

    def verify_files(self, bundle_dir: Path) -> None:
        """Every listed file exists and has its recorded sha256 (catches truncated copies)."""
        for role, name in self.graphs.items():
            if name not in self.sha256:
                raise BundleError(
                    f"{MANIFEST_FILE}: sha256 has no entry for graphs.{role} ({name})"
                )
        for name, expected in self.sha256.items():
            path = Path(bundle_dir) / name
            if not path.is_file():
                raise BundleError(f"{path}: listed in {MANIFEST_FILE} but missing")
            actual = sha256_of(path)
            if actual != expected:
                raise BundleError(
                    f"{path}: sha256 {actual[:12]}… differs from the manifest's {expected[:12]}… "
                    f"(truncated, corrupt or replaced file)"
                )


class _FieldReader:
    """Typed access to manifest fields with errors that name the field."""

    def __init__(self, data: Mapping[str, Any], source: str, prefix: str = "") -> None:
        self._data = data
        self._source = source
        self._prefix = prefix

    def _get(self, name: str) -> Any:
        if name not in self._data:
            raise BundleError(f"{self._source}: field {self._prefix}{name} is missing")
        return self._data[name]

    def _fail(self, name: str, expected: str, value: Any) -> BundleError:
        return BundleError(
            f"{self._source}: {self._prefix}{name} must be {expected}, got {value!r}"
        )

    def integer(self, name: str) -> int:
        value = self._get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self._fail(name, "a positive integer", value)
        return value

    def string(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str) or not value:
            raise self._fail(name, "a non-empty string", value)
        return value

    def boolean(self, name: str) -> bool:
        value = self._get(name)
        if not isinstance(value, bool):
            raise self._fail(name, "true or false", value)
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self._get(name)
        if value not in allowed:
            raise self._fail(name, f"one of {list(allowed)}", value)
        return value

    def mapping(self, name: str) -> Mapping[str, Any]:
        value = self._get(name)
        if not isinstance(value, Mapping):
            raise self._fail(name, "a mapping", value)
        return value

    def triple(self, name: str) -> tuple[float, float, float]:
        value = self._get(name)
        if (
            not isinstance(value, list | tuple)
            or len(value) != 3
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in value)
        ):
            raise self._fail(name, "three finite numbers (R, G, B)", value)
        return (float(value[0]), float(value[1]), float(value[2]))
