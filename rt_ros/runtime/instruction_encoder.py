"""Instruction text -> embedding on the robot: ONNX Runtime + `tokenizers`, or a precomputed table.

The bundle manifest's `instruction_encoder` section picks the kind (see build_instruction_encoder).
Embeddings are cached per (stripped) string, so a latched instruction is encoded once.
"""

from __future__ import annotations

import abc
import collections
import difflib
import functools
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

from rt_ros.runtime.errors import BundleError, ConfigError, InstructionError, RtRosError

# Graph contract of instruction_encoder.onnx (written by rt_ros.model.instruction_encoder_export).
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
REQUIRED_INPUT = "input_ids"
OUTPUT_NAME = "embedding"
ONNX_INT64 = "tensor(int64)"
ONNX_FLOAT = "tensor(float)"

DEFAULT_CACHE_SIZE = 1024
DEFAULT_MAX_LENGTH = 256
# [CLS] and [SEP] take two of the max_length positions, so fewer leaves no room for a word.
MIN_MAX_LENGTH = 3
# Text past max_length * this many characters is cut before tokenising, bounding the cost of a
# 100 kB instruction. A WordPiece token spans at least one character and an English one about
# four, so only text that is mostly whitespace loses tokens that truncation would have kept.
MAX_CHARS_PER_TOKEN = 32
# How many known instructions an unknown-instruction error lists.
KNOWN_SHOWN = 5

SessionFactory = Callable[[Path], onnxruntime.InferenceSession]


def cpu_session(path: Path) -> onnxruntime.InferenceSession:
    """The default session: ONNX Runtime on the CPU provider, default options."""
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _normalise(text: object) -> str:
    """The cache key and model input of an instruction: the text, stripped of outer whitespace."""
    if not isinstance(text, str):
        raise InstructionError(f"an instruction must be a str, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InstructionError(
            f"an instruction must not be empty or whitespace only, got {_short(text)}"
        )
    return stripped


def _short(text: str, limit: int = 60) -> str:
    """A quoted, clipped copy of `text` for error messages (instructions may be 100 kB)."""
    return repr(text) if len(text) <= limit else repr(text[:limit] + "...")


class InstructionEncoder(abc.ABC):
    """Turns an instruction into a float32 embedding of width `embedding_dim`, with an LRU cache.

    Subclasses implement `_encode_uncached`; `encode` validates the text, strips it, caches, checks
    the result's shape and finiteness, and returns a read-only array that callers may share.
    """

    name: str
    embedding_dim: int

    def __init__(
        self, name: str, embedding_dim: int, *, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"instruction encoder name must be a non-empty str, got {name!r}")
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int | np.integer):
            raise ConfigError(f"embedding_dim must be an int, got {embedding_dim!r}")
        if embedding_dim < 1:
            raise ConfigError(f"embedding_dim must be >= 1, got {embedding_dim}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ConfigError(f"cache_size must be an int >= 1, got {cache_size!r}")
        self.name = name
        self.embedding_dim = int(embedding_dim)
        # lru_cache is thread-safe and never caches a call that raised.
        self._cached_encode = functools.lru_cache(maxsize=cache_size)(self._encode_checked)

    def encode(self, text: str) -> np.ndarray:
        """The embedding of `text`: float32 (embedding_dim,), read-only; else InstructionError."""
        return self._cached_encode(_normalise(text))

    def cache_info(self) -> tuple[int, int, int, int]:
        """functools' CacheInfo(hits, misses, maxsize, currsize) of the cache, for diagnostics."""
        return self._cached_encode.cache_info()

    def clear_cache(self) -> None:
        """Forget every cached embedding."""
        self._cached_encode.cache_clear()

    @abc.abstractmethod
    def _encode_uncached(self, text: str) -> np.ndarray:
        """The embedding of a non-empty, stripped `text`, shape (embedding_dim,)."""

    def _encode_checked(self, text: str) -> np.ndarray:
        vector = np.array(self._encode_uncached(text), dtype=np.float32)  # a private copy
        if vector.shape != (self.embedding_dim,):
            raise InstructionError(
                f"{self.name} returned an embedding of shape {vector.shape} for {_short(text)}, "
                f"expected ({self.embedding_dim},)"
            )
        if not np.isfinite(vector).all():
            raise InstructionError(
                f"{self.name} returned a non-finite embedding for {_short(text)}"
            )
        vector.flags.writeable = False
        return vector

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, embedding_dim={self.embedding_dim})"


class OnnxSentenceEncoder(InstructionEncoder):
    """A sentence-transformers style encoder exported to ONNX, with its HF `tokenizer.json`.

    The graph takes int64 `input_ids` (and, if it declares them, `attention_mask`,
    `token_type_ids`) of shape [1, T] and returns `embedding` [1, E]. Text is truncated to
    `max_length` tokens, so any length of instruction encodes.
    """

    def __init__(
        self,
        onnx_path: Path,
        tokenizer_path: Path,
        *,
        name: str,
        embedding_dim: int,
        max_length: int = DEFAULT_MAX_LENGTH,
        session_factory: SessionFactory | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        super().__init__(name, embedding_dim, cache_size=cache_size)
        if isinstance(max_length, bool) or not isinstance(max_length, int):
            raise ConfigError(f"max_length must be an int, got {max_length!r}")
        if max_length < MIN_MAX_LENGTH:
            raise ConfigError(f"max_length must be >= {MIN_MAX_LENGTH}, got {max_length}")
        self.onnx_path = Path(onnx_path)
        self.tokenizer_path = Path(tokenizer_path)
        self.max_length = max_length
        self._tokenizer = self._load_tokenizer(self.tokenizer_path, max_length)
        self._session = self._load_session(self.onnx_path, session_factory or cpu_session)
        self._input_names = self._check_inputs()
        self._check_output()
        self._probe()

    @staticmethod
    def _load_tokenizer(path: Path, max_length: int) -> Tokenizer:
        if not path.is_file():
            raise BundleError(f"tokenizer file {path} does not exist")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as err:  # tokenizers raises a bare Exception for any unreadable file
            raise BundleError(f"tokenizer file {path} cannot be read: {err}") from err
        # tokenizer.json may carry its own padding/truncation (all-MiniLM's pads to 128): override.
        tokenizer.enable_truncation(max_length)
        tokenizer.no_padding()
        return tokenizer

    @staticmethod
    def _load_session(path: Path, factory: SessionFactory) -> onnxruntime.InferenceSession:
        if not path.is_file():
            raise BundleError(f"instruction encoder graph {path} does not exist")
        try:
            return factory(path)
        except RtRosError:  # the project's factory already names the file or the bad setting
            raise
        except Exception as err:  # ORT's errors (InvalidProtobuf, Fail, ...) derive only Exception
            raise BundleError(
                f"instruction encoder graph {path} cannot be loaded (truncated or corrupt?): {err}"
            ) from err

    def _check_inputs(self) -> tuple[str, ...]:
        inputs = {node.name: node for node in self._session.get_inputs()}
        unexpected = sorted(set(inputs) - set(TOKEN_INPUTS))
        if unexpected or REQUIRED_INPUT not in inputs:
            raise BundleError(
                f"{self.onnx_path.name} has inputs {sorted(inputs)}; expected {REQUIRED_INPUT!r} "
                f"and optionally the others of {list(TOKEN_INPUTS)}"
            )
        for node in inputs.values():
            if node.type != ONNX_INT64 or len(node.shape) != 2:
                raise BundleError(
                    f"{self.onnx_path.name} input {node.name!r} is {node.type} {node.shape}; "
                    f"expected {ONNX_INT64} [batch, sequence]"
                )
        return tuple(name for name in TOKEN_INPUTS if name in inputs)

    def _check_output(self) -> None:
        outputs = self._session.get_outputs()
        if [node.name for node in outputs] != [OUTPUT_NAME]:
            raise BundleError(
                f"{self.onnx_path.name} has outputs {[node.name for node in outputs]}; "
                f"expected exactly [{OUTPUT_NAME!r}]"
            )
        output = outputs[0]
        if output.type != ONNX_FLOAT or len(output.shape) != 2:
            raise BundleError(
                f"{self.onnx_path.name} output {OUTPUT_NAME!r} is {output.type} {output.shape}; "
                f"expected {ONNX_FLOAT} [batch, embedding_dim]"
            )
        width = output.shape[1]
        if isinstance(width, int) and width != self.embedding_dim:
            raise BundleError(self._width_message(width))

    def _width_message(self, width: int) -> str:
        return (
            f"embedding_dim mismatch: the manifest declares embedding_dim={self.embedding_dim} "
            f"but {self.onnx_path.name} outputs {OUTPUT_NAME!r} of width {width}"
        )

    def _probe(self) -> None:
        """Run the longest input once: checks max_length and the width, and warms the session."""
        longest = " ".join(["a"] * self.max_length)  # truncated to exactly max_length tokens
        try:
            output = self._run(longest)
        except Exception as err:  # any ORT failure here means the graph cannot serve max_length
            raise BundleError(
                f"{self.onnx_path.name} fails on an instruction of max_length={self.max_length} "
                f"tokens: {err}"
            ) from err
        if output.shape[-1] != self.embedding_dim:
            raise BundleError(self._width_message(output.shape[-1]))

    def _run(self, text: str) -> np.ndarray:
        encoding = self._tokenizer.encode(text[: self.max_length * MAX_CHARS_PER_TOKEN])
        columns = {
            "input_ids": encoding.ids,
            "attention_mask": encoding.attention_mask,
            "token_type_ids": encoding.type_ids,
        }
        feeds = {name: np.asarray([columns[name]], dtype=np.int64) for name in self._input_names}
        (output,) = self._session.run([OUTPUT_NAME], feeds)
        return output  # [1, E]

    def _encode_uncached(self, text: str) -> np.ndarray:
        try:
            output = self._run(text)
        except Exception as err:  # ORT's run errors derive only Exception; keep the caller alive
            raise InstructionError(f"{self.name} failed on {_short(text)}: {err}") from err
        if output.ndim != 2 or output.shape[0] != 1:
            raise InstructionError(
                f"{self.name} returned shape {output.shape} for one instruction, expected "
                f"(1, {self.embedding_dim})"
            )
        return output[0]


class PrecomputedEmbeddings(InstructionEncoder):
    """A fixed table instruction -> embedding, for bundles whose embeddings arrive precomputed.

    Keys are matched exactly after stripping surrounding whitespace; an unknown instruction raises
    InstructionError naming it and the closest known ones.
    """

    def __init__(
        self,
        table: Mapping[str, Any],
        *,
        name: str,
        embedding_dim: int | None = None,
        source: str = "the table",
    ) -> None:
        texts = list(table)
        try:
            vectors = [np.asarray(table[text], dtype=np.float32) for text in texts]
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{source}: an embedding is not a numeric vector: {err}") from err
        width = _table_width(vectors, embedding_dim, source)
        super().__init__(name, width, cache_size=max(len(texts), 1))
        self.source = source
        self._table = _build_table(texts, vectors, width, source)

    @classmethod
    def from_npz(
        cls, path: Path, *, name: str, embedding_dim: int | None = None
    ) -> PrecomputedEmbeddings:
        """Load `texts` (str [K]) and `embeddings` (float32 [K, E]) from an .npz file."""
        path = Path(path)
        if not path.is_file():
            raise BundleError(f"precomputed embeddings file {path} does not exist")
        try:
            archive = np.load(path, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise BundleError(f"precomputed embeddings file {path} is not an .npz archive")
            with archive:
                missing = sorted({"texts", "embeddings"} - set(archive.files))
                if missing:
                    raise BundleError(
                        f"{path} lacks the key(s) {missing}; it holds {sorted(archive.files)}"
                    )
                texts = archive["texts"]
                embeddings = archive["embeddings"]
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise BundleError(f"precomputed embeddings file {path} cannot be read: {err}") from err
        if texts.ndim != 1 or texts.dtype.kind != "U":
            raise BundleError(
                f"{path}: 'texts' must be a 1-D str array, got {texts.dtype} {texts.shape}"
            )
        if embeddings.ndim != 2 or embeddings.shape[0] != texts.shape[0]:
            raise BundleError(
                f"{path}: 'embeddings' must be [K, E] with K = len(texts) = {texts.shape[0]}, "
                f"got {embeddings.shape}"
            )
        duplicates = sorted(t for t, n in collections.Counter(texts.tolist()).items() if n > 1)
        if duplicates:
            raise BundleError(f"{path}: instruction(s) {duplicates[:KNOWN_SHOWN]} appear twice")
        try:
            return cls(
                dict(zip(texts.tolist(), embeddings, strict=True)),
                name=name,
                embedding_dim=embedding_dim,
                source=str(path),
            )
        except ConfigError as err:
            raise BundleError(str(err)) from err

    def save_npz(self, path: Path) -> None:
        """Write the table in the layout from_npz reads (for bundle writers)."""
        texts = list(self._table)
        np.savez(
            Path(path),
            texts=np.asarray(texts, dtype=np.str_),
            embeddings=np.stack([self._table[text] for text in texts]).astype(np.float32),
        )

    @property
    def texts(self) -> tuple[str, ...]:
        """The instructions this table knows, in table order."""
        return tuple(self._table)

    def _encode_uncached(self, text: str) -> np.ndarray:
        vector = self._table.get(text)
        if vector is None:
            known = list(self._table)
            shown = difflib.get_close_matches(text, known, n=KNOWN_SHOWN, cutoff=0.0)
            raise InstructionError(
                f"unknown instruction {_short(text)}: {self.source} holds {len(known)} "
                f"precomputed instructions, e.g. {', '.join(_short(k) for k in shown)}"
            )
        return vector


def _table_width(vectors: list[np.ndarray], embedding_dim: int | None, source: str) -> int:
    if not vectors:
        raise ConfigError(f"{source} holds no instructions")
    if vectors[0].ndim != 1:
        raise ConfigError(
            f"{source}: embeddings must be 1-D vectors, got shape {vectors[0].shape}"
        )
    width = int(vectors[0].shape[0])
    if embedding_dim is not None and width != embedding_dim:
        raise ConfigError(
            f"embedding_dim mismatch: declared embedding_dim={embedding_dim} but {source} holds "
            f"embeddings of width {width}"
        )
    return width


def _build_table(
    texts: Iterable[Any], vectors: list[np.ndarray], width: int, source: str
) -> dict[str, np.ndarray]:
    table: dict[str, np.ndarray] = {}
    for text, vector in zip(texts, vectors, strict=True):
        try:
            key = _normalise(text)
        except InstructionError as err:
            raise ConfigError(f"{source}: bad instruction key: {err}") from err
        if vector.shape != (width,):
            raise ConfigError(
                f"{source}: the embedding of {_short(key)} has shape {vector.shape}, "
                f"expected ({width},)"
            )
        if not np.isfinite(vector).all():
            raise ConfigError(f"{source}: the embedding of {_short(key)} is not finite")
        if key in table:
            raise ConfigError(f"{source}: instruction {_short(key)} appears twice")
        vector = vector.copy()
        vector.flags.writeable = False
        table[key] = vector
    return table


Builder = Callable[[Mapping[str, Any], Path, SessionFactory | None], InstructionEncoder]
_BUILDERS: dict[str, Builder] = {}


def register_instruction_encoder(kind: str, builder: Builder) -> None:
    """Make `kind` buildable from a manifest; `builder(spec, bundle_dir, session_factory)`."""
    if kind in _BUILDERS:
        raise ConfigError(f"instruction encoder kind {kind!r} is already registered")
    _BUILDERS[kind] = builder


def known_instruction_encoder_kinds() -> tuple[str, ...]:
    """The `kind` values build_instruction_encoder accepts."""
    return tuple(sorted(_BUILDERS))


def build_instruction_encoder(
    spec: Mapping[str, Any], bundle_dir: Path, session_factory: SessionFactory | None = None
) -> InstructionEncoder:
    """The encoder a manifest's `instruction_encoder` section describes; files are bundle-relative.

    Kinds: `onnx_sentence_encoder` (name, embedding_dim, file, tokenizer, max_length) and
    `precomputed` (name, embedding_dim, file: an .npz). The registry is open: a 512-d
    USE-compatible encoder, say, is added with register_instruction_encoder("...", builder).
    Other keys (hashes, opset, exporter) are left to the manifest reader. Raises ConfigError for
    a bad section and BundleError for missing, corrupt or mismatching files.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"instruction_encoder must be a mapping, got {type(spec).__name__}")
    kind = spec.get("kind")
    builder = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if builder is None:
        raise ConfigError(
            f"instruction_encoder.kind={kind!r} is unknown; known kinds: "
            f"{list(known_instruction_encoder_kinds())}"
        )
    return builder(spec, Path(bundle_dir), session_factory)


def _field(spec: Mapping[str, Any], key: str, kind: type, default: Any = None) -> Any:
    """spec[key], checked to be a `kind` (a non-empty str, a positive int); names the field."""
    value = spec.get(key, default)
    if value is None:
        raise ConfigError(f"instruction_encoder.{key} is missing")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"instruction_encoder.{key} must be a positive int, got {value!r}")
    elif not isinstance(value, str) or not value.strip():
        raise ConfigError(f"instruction_encoder.{key} must be a non-empty str, got {value!r}")
    return value


def _build_onnx(
    spec: Mapping[str, Any], bundle_dir: Path, session_factory: SessionFactory | None
) -> OnnxSentenceEncoder:
    return OnnxSentenceEncoder(
        bundle_dir / _field(spec, "file", str),
        bundle_dir / _field(spec, "tokenizer", str),
        name=_field(spec, "name", str),
        embedding_dim=_field(spec, "embedding_dim", int),
        max_length=_field(spec, "max_length", int, DEFAULT_MAX_LENGTH),
        session_factory=session_factory,
    )


def _build_precomputed(
    spec: Mapping[str, Any], bundle_dir: Path, _session_factory: SessionFactory | None
) -> PrecomputedEmbeddings:
    return PrecomputedEmbeddings.from_npz(
        bundle_dir / _field(spec, "file", str),
        name=_field(spec, "name", str),
        embedding_dim=_field(spec, "embedding_dim", int),
    )


register_instruction_encoder("onnx_sentence_encoder", _build_onnx)
register_instruction_encoder("precomputed", _build_precomputed)
