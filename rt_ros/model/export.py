"""Export RT-1 to a model bundle: frame_encoder.onnx, policy.onnx, instruction encoder, manifest.

The two graphs split RT-1 where the cache sits: the frame encoder runs once per new frame, the
policy graph once per tick on the 6 cached frames' tokens. Export checks ONNX Runtime against
PyTorch before it writes the manifest: a bundle that exists has graphs that match the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import inspect
import io
import logging
import os
import platform
import shutil
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import yaml
from torch import nn

import rt_ros
from rt_ros.model.instruction_encoder_export import DEFAULT_ENCODER_NAME, export_minilm
from rt_ros.model.presets import ModelPreset, get_preset
from rt_ros.model.rt1 import RT1
from rt_ros.runtime.action_space import DEFAULT_ACTION_SPACE, ActionSpace, load_action_space
from rt_ros.runtime.errors import ConfigError, RtRosError
from rt_ros.runtime.manifest import (
    CURRENT_STEP_INPUT,
    EMBEDDING_INPUT,
    FORMAT_VERSION,
    FRAME_TOKENS,
    IMAGE_INPUT,
    LOGITS_OUTPUT,
    BundleManifest,
    ImageSpec,
    sha256_of,
)

OPSET = 18
# Parity thresholds between ONNX Runtime and PyTorch in fp32.
MAX_LOGIT_DIFFERENCE = 1e-4
# Batch sizes of the parity trials: graphs take any batch (a policy server runs several robots'
# steps in one call); the node runs batch 1.
PARITY_BATCH_SIZES = (1, 3, 2)
PARITY_TRIALS = len(PARITY_BATCH_SIZES)
# The graphs' leading axis is symbolic, from 1 to this many. torch.export specialises an example
# of size 1, so the graphs are traced with EXAMPLE_BATCH_SIZE.
MAX_BATCH_SIZE = 64
EXAMPLE_BATCH_SIZE = 2
CALIBRATION_BATCHES = 4

ProgressCallback = Callable[[str], None]
# A check of the written bundle against the model (e.g. held-out token accuracy of both); its
# result goes into the manifest's provenance under "held_out".
BundleValidator = Callable[["RT1", Path, ActionSpace], dict]
# Held-out token accuracy of the bundle may differ from the checkpoint's by at most this much
# (argmax near-ties can flip under float rounding; anything more is a broken export).
MAX_HELD_OUT_ACCURACY_DIFFERENCE = 0.005


class ExportError(RtRosError):
    """The exported graphs do not reproduce the PyTorch model, or the export inputs are wrong."""


@dataclass(frozen=True)
class ParityReport:
    """ONNX Runtime vs PyTorch on random inputs."""

    max_token_difference: float
    token_scale: float  # max |token| from PyTorch: differences are only meaningful against it
    max_logit_difference: float
    argmax_identical: bool
    trials: int
    batch_sizes: tuple[int, ...] = PARITY_BATCH_SIZES


class _FrameEncoderGraph(nn.Module):
    """frame_encoder.onnx: image uint8 [B,H,W,3] + embedding [B,E] -> frame tokens [B,N,D]."""

    def __init__(self, model: RT1) -> None:
        super().__init__()
        self.frame_encoder = model.frame_encoder

    def forward(self, image: torch.Tensor, instruction_embedding: torch.Tensor) -> torch.Tensor:
        return self.frame_encoder(image, instruction_embedding)


class _PolicyGraph(nn.Module):
    """policy.onnx: cached tokens [B,T,N,D] + current step (scalar int64, one for the whole
    batch) -> logits [B,A,V]."""

    def __init__(self, model: RT1) -> None:
        super().__init__()
        self.policy = model.policy

    def forward(self, frame_tokens: torch.Tensor, current_step: torch.Tensor) -> torch.Tensor:
        return self.policy(frame_tokens, current_step)


def cache_dir() -> Path:
    """Where exported instruction encoders are kept between exports (RT_ROS_CACHE overrides)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rt_ros"
    return Path(os.environ.get("RT_ROS_CACHE", default))


def load_checkpoint(path: Path) -> tuple[RT1, dict]:
    """A training checkpoint: {'preset': {...}, 'model_state': state_dict, 'provenance': {...}}."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: checkpoint file does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError) as error:
        raise ExportError(f"{path}: cannot read checkpoint: {error}") from error
    for key in ("preset", "model_state"):
        if key not in checkpoint:
            raise ExportError(f"{path}: checkpoint has no {key!r} entry")
    model = RT1.from_preset(ModelPreset(**checkpoint["preset"]))
    model.load_state_dict(checkpoint["model_state"])
    provenance = dict(checkpoint.get("provenance") or {})
    provenance["checkpoint"] = str(path.resolve())
    provenance["checkpoint_sha256"] = sha256_of(path)
    return model.eval(), provenance


def build_random_model(preset: str | ModelPreset, seed: int = 0) -> RT1:
    """A seeded random RT-1 whose BatchNorm statistics are calibrated on random frames.

    Fresh BatchNorm statistics shrink activations about 3x per MBConv block, so an uncalibrated
    random trunk emits tokens near 1e-5 whatever the image: useless for a demo and a parity check
    that compares near-zeros. A few training-mode passes (cumulative averages) fix that.
    """
    model = RT1.from_preset(preset, seed=seed)
    spec = model.preset
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(CALIBRATION_BATCHES):
            shape = (2, spec.image_height_px, spec.image_width_px, 3)
            images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
            embedding = torch.randn((2, spec.embedding_dim), generator=generator)
            model.frame_encoder(images, embedding / embedding.norm(dim=-1, keepdim=True))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    return model.eval()


def cached_instruction_encoder(progress: ProgressCallback) -> tuple[Path, dict]:
    """Export all-MiniLM-L6-v2 once per machine; later bundles copy the cached files."""
    folder = cache_dir() / "instruction_encoders" / "all-MiniLM-L6-v2"
    spec_path = folder / "spec.yaml"
    if spec_path.is_file():
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
        if all((folder / spec[key]).is_file() for key in ("file", "tokenizer")):
            return folder, spec
    progress(f"exporting the instruction encoder {DEFAULT_ENCODER_NAME} (once per machine)")
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    spec = export_minilm(staging)
    (staging / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder, spec


def _export_graph(
    module: nn.Module,
    args: tuple,
    path: Path,
    inputs: list,
    outputs: list,
    batched: tuple[str, ...],
) -> None:
    """Export `module` traced on `args`; the leading axis of the arguments named in `batched`
    (forward's parameter names) is the symbolic batch axis."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH_SIZE)
    parameters = inspect.signature(module.forward).parameters
    dynamic_shapes = {name: ({0: batch} if name in batched else None) for name in parameters}
    # The exporter's optimiser reports every folded constant at INFO; keep the console readable.
    # It also warns that torchvision's ops are not registered (rt_ros uses none of them).
    for name in ("onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with (
        torch.no_grad(),
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", category=FutureWarning)
        # Both frame-encoder inputs share the batch axis; the exporter says it keeps one name.
        warnings.filterwarnings("ignore", message=".*shares the same shape constraints")
        program = torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            external_data=False,
            verbose=False,
        )
    del program


def check_parity(
    model: RT1, frame_encoder_path: Path, policy_path: Path, seed: int = 0
) -> ParityReport:
    """ONNX Runtime vs PyTorch on random frames, embeddings and every current step."""
    preset = model.preset
    generator = np.random.default_rng(seed)
    cpu = ["CPUExecutionProvider"]
    encoder = ort.InferenceSession(str(frame_encoder_path), providers=cpu)
    policy = ort.InferenceSession(str(policy_path), providers=cpu)
    token_difference = logit_difference = token_scale = 0.0
    argmax_identical = True
    with torch.no_grad():
        for batch in PARITY_BATCH_SIZES:
            image = generator.integers(
                0, 256, (batch, preset.image_height_px, preset.image_width_px, 3), dtype=np.uint8
            )
            embedding = generator.standard_normal((batch, preset.embedding_dim)).astype(np.float32)
            embedding /= np.linalg.norm(embedding, axis=-1, keepdims=True)
            expected_tokens = model.frame_encoder(
                torch.from_numpy(image), torch.from_numpy(embedding)
            )
            (tokens,) = encoder.run(None, {IMAGE_INPUT: image, EMBEDDING_INPUT: embedding})
            token_scale = max(token_scale, float(expected_tokens.abs().max()))
            token_difference = max(
                token_difference, float(np.abs(tokens - expected_tokens.numpy()).max())
            )
            window = generator.standard_normal(
                (batch, preset.history_length, preset.tokens_per_frame, preset.token_dim)
            ).astype(np.float32)
            for step in range(preset.history_length):
                current = np.array(step, np.int64)
                expected = model.policy(
                    torch.from_numpy(window), torch.from_numpy(current)
                ).numpy()
                (logits,) = policy.run(None, {FRAME_TOKENS: window, CURRENT_STEP_INPUT: current})
                logit_difference = max(logit_difference, float(np.abs(logits - expected).max()))
                argmax_identical &= bool(np.array_equal(logits.argmax(-1), expected.argmax(-1)))
    return ParityReport(
        token_difference, token_scale, logit_difference, argmax_identical, PARITY_TRIALS
    )


def _plain(value: object) -> object:
    """Tuples -> lists, recursively, so yaml.safe_dump can write the value."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _deviations(preset: ModelPreset, trained: bool) -> list[str]:
    notes = [
        "instruction embeddings come from all-MiniLM-L6-v2 (384-d), not the Universal Sentence "
        "Encoder (512-d) of the paper; FiLM layers take the manifest's embedding width",
        "frames enter as uint8 RGB NHWC; scaling and ImageNet mean/std normalisation run inside "
        "frame_encoder.onnx",
        "the transformer's feed-forward is one dense layer of feed_forward_dim, as in the "
        "reference implementation",
    ]
    if not trained:
        notes.append(
            "UNTRAINED: weights are a seeded random initialisation (no ImageNet EfficientNet "
            "weights are available offline); actions carry no meaning"
        )
    if preset.name != "rt1":
        notes.append(f"preset {preset.name} is smaller than the paper's RT-1 (see model sizes)")
    return notes


def export_bundle(
    out_dir: Path | str,
    preset: str | ModelPreset = "rt1",
    *,
    checkpoint: Path | None = None,
    seed: int = 0,
    action_space: str | Path = DEFAULT_ACTION_SPACE,
    progress: ProgressCallback | None = None,
    validate: BundleValidator | None = None,
) -> BundleManifest:
    """Write a complete, parity-checked model bundle to `out_dir` and return its manifest.

    `validate(model, out_dir, space)` runs on the finished bundle; its figures are recorded in
    the manifest, and a bundle whose held-out accuracy disagrees with the model's is removed.
    """
    say = progress or (lambda message: None)
    out_dir = Path(out_dir)
    space: ActionSpace = load_action_space(action_space)
    if checkpoint is not None:
        say(f"loading checkpoint {checkpoint}")
        model, provenance = load_checkpoint(checkpoint)
    else:
        model_preset = get_preset(preset) if isinstance(preset, str) else preset
        say(f"building {model_preset.name} with random weights (seed {seed})")
        model = build_random_model(model_preset, seed)
        provenance = {
            "weights": "random initialisation, BatchNorm calibrated on random frames",
            "seed": seed,
            "training_run": None,
        }
    preset_obj = model.preset
    if (
        len(space.dimensions) != preset_obj.num_action_dims
        or space.num_bins != preset_obj.num_action_bins
    ):
        raise ConfigError(
            f"action space {space.name} has {len(space.dimensions)} dimensions x {space.num_bins} "
            f"bins but preset {preset_obj.name} predicts {preset_obj.num_action_dims} x "
            f"{preset_obj.num_action_bins}"
        )
    encoder_folder, encoder_spec = cached_instruction_encoder(say)
    if encoder_spec["embedding_dim"] != preset_obj.embedding_dim:
        raise ConfigError(
            f"preset {preset_obj.name} expects {preset_obj.embedding_dim}-d embeddings but "
            f"{encoder_spec['name']} gives {encoder_spec['embedding_dim']}-d"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for key in ("file", "tokenizer"):
        shutil.copyfile(encoder_folder / encoder_spec[key], out_dir / encoder_spec[key])

    say("exporting frame_encoder.onnx")
    image = torch.zeros(
        (EXAMPLE_BATCH_SIZE, preset_obj.image_height_px, preset_obj.image_width_px, 3),
        dtype=torch.uint8,
    )
    embedding = torch.zeros((EXAMPLE_BATCH_SIZE, preset_obj.embedding_dim))
    frame_encoder_path = out_dir / "frame_encoder.onnx"
    _export_graph(
        _FrameEncoderGraph(model).eval(),
        (image, embedding),
        frame_encoder_path,
        [IMAGE_INPUT, EMBEDDING_INPUT],
        [FRAME_TOKENS],
        batched=("image", "instruction_embedding"),
    )
    say("exporting policy.onnx")
    window = torch.zeros(
        (
            EXAMPLE_BATCH_SIZE,
            preset_obj.history_length,
            preset_obj.tokens_per_frame,
            preset_obj.token_dim,
        )
    )
    policy_path = out_dir / "policy.onnx"
    _export_graph(
        _PolicyGraph(model).eval(),
        (window, torch.tensor(0, dtype=torch.int64)),
        policy_path,
        [FRAME_TOKENS, CURRENT_STEP_INPUT],
        [LOGITS_OUTPUT],
        batched=("frame_tokens",),
    )

    say("checking ONNX Runtime against PyTorch")
    parity = check_parity(model, frame_encoder_path, policy_path, seed)
    if parity.max_logit_difference > MAX_LOGIT_DIFFERENCE or not parity.argmax_identical:
        raise ExportError(
            f"exported graphs disagree with PyTorch: max |logit difference| "
            f"{parity.max_logit_difference:.2e} (limit {MAX_LOGIT_DIFFERENCE:.0e}), "
            f"argmax identical: {parity.argmax_identical}"
        )

    say("writing manifest.yaml")
    files = [
        frame_encoder_path.name,
        policy_path.name,
        encoder_spec["file"],
        encoder_spec["tokenizer"],
    ]
    manifest = BundleManifest(
        format_version=FORMAT_VERSION,
        preset=preset_obj.name,
        image=ImageSpec(
            height_px=preset_obj.image_height_px,
            width_px=preset_obj.image_width_px,
            mean=tuple(preset_obj.image_mean),
            std=tuple(preset_obj.image_std),
        ),
        history_length=preset_obj.history_length,
        tokens_per_frame=preset_obj.tokens_per_frame,
        token_dim=preset_obj.token_dim,
        embedding_dim=preset_obj.embedding_dim,
        instruction_encoder={k: v for k, v in encoder_spec.items() if k != "embedding_dim"},
        action_space=space,
        opset=OPSET,
        graphs={"frame_encoder": frame_encoder_path.name, "policy": policy_path.name},
        sha256={name: sha256_of(out_dir / name) for name in files},
        model={
            **_plain(asdict(preset_obj)),
            "parameters": {
                "frame_encoder": sum(p.numel() for p in model.frame_encoder.parameters()),
                "policy": sum(p.numel() for p in model.policy.parameters()),
            },
        },
        provenance={
            **provenance,
            "exported_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "exported_by": f"rt_ros {rt_ros.__version__}",
            "torch": str(torch.__version__),
            "onnxruntime": ort.__version__,
            "python": platform.python_version(),
            "parity": _plain(asdict(parity)),
        },
        deviations=tuple(_deviations(preset_obj, trained=checkpoint is not None)),
    )
    manifest.write(out_dir)
    if validate is not None:
        say("held-out token accuracy: PyTorch checkpoint vs exported bundle")
        figures = validate(model, out_dir, space)
        difference = abs(figures["onnx"]["token_accuracy"] - figures["pytorch"]["token_accuracy"])
        if difference > MAX_HELD_OUT_ACCURACY_DIFFERENCE:
            (out_dir / "manifest.yaml").unlink()
            raise ExportError(
                f"held-out token accuracy of the bundle ({figures['onnx']['token_accuracy']:.4f})"
                f" differs from the checkpoint's ({figures['pytorch']['token_accuracy']:.4f})"
            )
        manifest = dataclasses.replace(
            manifest, provenance={**manifest.provenance, "held_out": _plain(figures)}
        )
        manifest.write(out_dir)
    return manifest
