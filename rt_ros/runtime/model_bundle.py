"""A loaded model bundle: manifest, both ONNX graphs and the instruction encoder, checked together.

Loading refuses a bundle whose graphs disagree with its manifest, naming the manifest field, so a
mismatch never surfaces later as a shape error deep inside ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rt_ros.runtime.backends import open_graph
from rt_ros.runtime.errors import BundleError
from rt_ros.runtime.inference_graph import InferenceGraph
from rt_ros.runtime.instruction_encoder import InstructionEncoder, build_instruction_encoder
from rt_ros.runtime.manifest import (
    CURRENT_STEP_INPUT,
    EMBEDDING_INPUT,
    FRAME_TOKENS,
    IMAGE_INPUT,
    LOGITS_OUTPUT,
    BundleManifest,
)
from rt_ros.runtime.onnx_session import OnnxModel, SessionConfig


@dataclass
class ModelBundle:
    """Everything the robot needs to turn frames and an instruction into action logits."""

    path: Path
    manifest: BundleManifest
    frame_encoder: InferenceGraph
    policy: InferenceGraph
    instruction_encoder: InstructionEncoder

    @classmethod
    def load(
        cls,
        bundle_dir: Path | str,
        session_config: SessionConfig | None = None,
        verify_checksums: bool = True,
    ) -> ModelBundle:
        bundle_dir = Path(bundle_dir)
        if not bundle_dir.is_dir():
            raise BundleError(f"{bundle_dir}: model bundle folder does not exist")
        manifest = BundleManifest.load(bundle_dir)
        if verify_checksums:
            manifest.verify_files(bundle_dir)
        session_config = session_config or SessionConfig()
        frame_encoder = open_graph(bundle_dir / manifest.graphs["frame_encoder"], session_config)
        policy = open_graph(bundle_dir / manifest.graphs["policy"], session_config)
        check_graphs_against_manifest(manifest, frame_encoder, policy)
        # The instruction encoder runs once per new instruction: ONNX Runtime whatever runs the
        # rest (its session object is what the encoder takes).
        encoder_config = session_config.for_onnx_runtime()
        encoder = build_instruction_encoder(
            manifest.instruction_encoder,
            bundle_dir,
            session_factory=lambda path: OnnxModel(path, encoder_config).session,
        )
        if encoder.embedding_dim != manifest.embedding_dim:
            raise BundleError(
                f"instruction_encoder.embedding_dim is {manifest.embedding_dim} but the encoder "
                f"{encoder.name!r} gives {encoder.embedding_dim}-d embeddings"
            )
        return cls(bundle_dir, manifest, frame_encoder, policy, encoder)

    @property
    def providers(self) -> dict[str, str]:
        """The execution provider (or OpenVINO) each graph runs on."""
        return {"frame_encoder": self.frame_encoder.provider, "policy": self.policy.provider}

    @property
    def precision(self) -> str:
        """The precision the graphs compute in (f32, bf16); mixed as `encoder/policy`."""
        kinds = {self.frame_encoder.precision, self.policy.precision}
        if len(kinds) == 1:
            return kinds.pop()
        return f"{self.frame_encoder.precision}/{self.policy.precision}"


# In an expected shape: the leading batch axis, 1 or symbolic.
BATCH_AXIS = object()


def _expect(
    graph: InferenceGraph, kind: str, name: str, shape: tuple, fields: tuple[str, ...]
) -> None:
    """Compare one tensor's fixed shape with the manifest; the error names the manifest fields."""
    tensors = graph.inputs if kind == "input" else graph.outputs
    if name not in tensors:
        raise BundleError(
            f"{graph.path.name}: has no {kind} named {name!r} (has {sorted(tensors)}); "
            f"was it exported by rt_ros?"
        )
    actual = tensors[name].shape
    if len(actual) != len(shape):
        raise BundleError(
            f"{graph.path.name}: {kind} {name!r} has rank {len(actual)}, manifest implies "
            f"{len(shape)} ({', '.join(fields)})"
        )
    for axis, (want, got) in enumerate(zip(shape, actual, strict=True)):
        if want is BATCH_AXIS:
            # Bundles exported before the batch axis became symbolic have batch size 1.
            if isinstance(got, int) and got != 1:
                raise BundleError(
                    f"{graph.path.name}: {kind} {name!r} has a fixed batch size {got}; rt_ros "
                    f"exports batch size 1 or a symbolic batch axis"
                )
            continue
        if want is not None and got != want:
            raise BundleError(
                f"{graph.path.name}: {kind} {name!r} axis {axis} is {got} but the manifest "
                f"({fields[min(axis, len(fields) - 1)]}) says {want}"
            )


def check_graphs_against_manifest(
    manifest: BundleManifest, frame_encoder: InferenceGraph, policy: InferenceGraph
) -> None:
    """The sizes written in the manifest are the sizes the graphs were exported with."""
    image = manifest.image
    space = manifest.action_space
    _expect(
        frame_encoder,
        "input",
        IMAGE_INPUT,
        (BATCH_AXIS, image.height_px, image.width_px, 3),
        ("batch", "image.height_px", "image.width_px", "image.color"),
    )
    _expect(
        frame_encoder,
        "input",
        EMBEDDING_INPUT,
        (BATCH_AXIS, manifest.embedding_dim),
        ("batch", "instruction_encoder.embedding_dim"),
    )
    _expect(
        frame_encoder,
        "output",
        FRAME_TOKENS,
        (BATCH_AXIS, manifest.tokens_per_frame, manifest.token_dim),
        ("batch", "tokens_per_frame", "token_dim"),
    )
    _expect(
        policy,
        "input",
        FRAME_TOKENS,
        (BATCH_AXIS, manifest.history_length, manifest.tokens_per_frame, manifest.token_dim),
        ("batch", "history_length", "tokens_per_frame", "token_dim"),
    )
    _expect(policy, "input", CURRENT_STEP_INPUT, (), ())
    _expect(
        policy,
        "output",
        LOGITS_OUTPUT,
        (BATCH_AXIS, len(space.dimensions), space.num_bins),
        ("batch", "action_space.dimensions", "action_space.num_bins"),
    )
