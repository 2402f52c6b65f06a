"""ONNX Runtime sessions: execution providers from configuration with fallback, IO binding on GPUs.

`SessionConfig` is how every backend is configured (rt_ros.runtime.backends picks ONNX Runtime or
OpenVINO from its providers). One `OnnxModel` wraps one graph of a bundle on ONNX Runtime. It picks
the first requested execution provider that actually starts (a GPU build of onnxruntime lists CUDA
even on a machine without CUDA libraries), says in one log line what runs, and runs fixed-shape
graphs through IO binding with buffers allocated once, which is what CUDA graphs need.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from rt_ros.runtime.errors import BundleError, ConfigError
from rt_ros.runtime.inference_graph import InferenceGraph, TensorSpec

LOGGER = logging.getLogger(__name__)

# Short names accepted in configuration, mapped to ONNX Runtime's provider names.
PROVIDER_ALIASES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
# OpenVINO is a backend of its own (the `openvino` package), not an ONNX Runtime provider.
OPENVINO = "openvino"
OPENVINO_PROVIDER = "OpenVINO"
# `auto` tries CUDA, then ONNX Runtime's CPU provider; with a precision below f32 it tries OpenVINO
# (where installed) before the CPU provider, as only OpenVINO computes bf16. At f32 OpenVINO is
# not worth it on a CPU: in the policy node on 2 cores (bench-node, side by side) rt1-tiny took
# 9.1 ms median / 55.9 ms p99 per step on OpenVINO vs 6.2 / 11.9 on ONNX Runtime, and rt1 102 vs
# 119 ms median with both missing 3 Hz ticks. TensorRT is only used when asked for: its first run
# builds engines for minutes.
AUTO_PROVIDERS = ("cuda", "cpu")
AUTO_PROVIDERS_REDUCED_PRECISION = ("cuda", OPENVINO, "cpu")
# Precisions a graph may compute in. ONNX Runtime's CPU and CUDA providers compute our f32 graphs
# in f32 (CUDA with its TF32 tensor-core mode off, which ONNX Runtime would otherwise turn on);
# tf32 lets CUDA's matrix products round inputs to TF32 (Ampere and later); f16 runs a float16
# copy of each graph on CUDA (made at load, inputs and outputs still float32) or builds TensorRT
# engines in fp16; bf16 needs the OpenVINO backend (native on a CPU with AVX-512 BF16 or AMX).
PRECISIONS = ("f32", "tf32", "f16", "bf16")
# The precision -> the backends that compute it (by alias); f32 runs everywhere.
_PRECISION_BACKENDS = {"tf32": ("cuda",), "f16": ("cuda", "tensorrt"), "bf16": (OPENVINO,)}
# Every alias -> the name provider_names() gives it.
_PROVIDER_OF_ALIAS = {**PROVIDER_ALIASES, OPENVINO: OPENVINO_PROVIDER}
GRAPH_OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_DEVICE_OF_PROVIDER = {
    "TensorrtExecutionProvider": "cuda",
    "CUDAExecutionProvider": "cuda",
    "CPUExecutionProvider": "cpu",
}
_NUMPY_DTYPE_OF_ONNX = {
    "tensor(float)": np.float32,
    "tensor(uint8)": np.uint8,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}
_ORT_WARNING = 2
_ORT_FATAL = 4


@dataclass(frozen=True)
class SessionConfig:
    """How a backend (ONNX Runtime or OpenVINO) runs a bundle's graphs; validated once, errors
    name the field."""

    providers: tuple[str, ...] = ("auto",)
    # Threads one graph runs on (ONNX Runtime intra-op, OpenVINO inference threads); 0: the
    # backend's default (one per physical core).
    intra_op_threads: int = 0
    inter_op_threads: int = 1
    graph_optimization: str = "all"
    use_cuda_graph: bool = False  # replay captured CUDA graphs; needs fixed shapes (ours are)
    device_id: int = 0
    # ONNX Runtime's intra-op threads spin for a while after a run (its default): quicker to
    # start the next run on an idle machine, but cores taken from every other thread meanwhile.
    spin_wait: bool = True
    precision: str = "f32"  # one of PRECISIONS; not f32 only where OpenVINO may run

    def __post_init__(self) -> None:
        if not self.providers:
            raise ConfigError("providers: at least one execution provider is needed")
        for name in self.providers:
            if name != "auto" and name.lower() not in (*PROVIDER_ALIASES, OPENVINO):
                known = ", ".join(["auto", *PROVIDER_ALIASES, OPENVINO])
                raise ConfigError(
                    f"providers: unknown execution provider {name!r} (known: {known})"
                )
        if self.intra_op_threads < 0:
            raise ConfigError(f"intra_op_threads must be >= 0, got {self.intra_op_threads}")
        if self.inter_op_threads < 0:
            raise ConfigError(f"inter_op_threads must be >= 0, got {self.inter_op_threads}")
        if self.graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            known = ", ".join(GRAPH_OPTIMIZATION_LEVELS)
            raise ConfigError(
                f"graph_optimization must be one of {known}, got {self.graph_optimization!r}"
            )
        if self.device_id < 0:
            raise ConfigError(f"device_id must be >= 0, got {self.device_id}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        backends = _PRECISION_BACKENDS.get(self.precision, ())
        names = self.provider_names()
        if backends and not any(_PROVIDER_OF_ALIAS[alias] in names for alias in backends):
            raise ConfigError(
                f"precision {self.precision} needs the {' or '.join(backends)} provider (or "
                f"auto), providers are {list(self.providers)}"
            )

    def provider_names(self) -> list[str]:
        """The providers to try, in order, without duplicates: ONNX Runtime's names, and
        OPENVINO_PROVIDER for the OpenVINO backend."""
        auto = AUTO_PROVIDERS_REDUCED_PRECISION if self.precision == "bf16" else AUTO_PROVIDERS
        names: list[str] = []
        for name in self.providers:
            for alias in auto if name == "auto" else (name.lower(),):
                provider = _PROVIDER_OF_ALIAS[alias]
                if provider not in names:
                    names.append(provider)
        return names

    def onnx_runtime_names(self) -> list[str]:
        """The ONNX Runtime providers among provider_names(); CPU when only OpenVINO is named."""
        names = [name for name in self.provider_names() if name != OPENVINO_PROVIDER]
        return names or [PROVIDER_ALIASES["cpu"]]

    def for_onnx_runtime(self) -> SessionConfig:
        """This configuration for a graph that always runs on ONNX Runtime (the instruction
        encoder): OpenVINO left out, f32."""
        aliases = {value: key for key, value in PROVIDER_ALIASES.items()}
        return replace(
            self,
            providers=tuple(aliases[name] for name in self.onnx_runtime_names()),
            precision="f32",
        )


def _session_options(config: SessionConfig) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = config.inter_op_threads
    options.graph_optimization_level = GRAPH_OPTIMIZATION_LEVELS[config.graph_optimization]
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if config.spin_wait else "0"
    )
    return options


def _provider_options(provider: str, config: SessionConfig) -> dict[str, str]:
    if provider == "CUDAExecutionProvider":
        return {
            "device_id": str(config.device_id),
            "enable_cuda_graph": "1" if config.use_cuda_graph else "0",
            "use_tf32": "1" if config.precision == "tf32" else "0",
        }
    if provider == "TensorrtExecutionProvider":
        return {
            "device_id": str(config.device_id),
            "trt_engine_cache_enable": "1",
            "trt_fp16_enable": "1" if config.precision == "f16" else "0",
        }
    return {}


def create_session(
    path: Path,
    config: SessionConfig,
    providers: Sequence[str] | None = None,
    announce: bool = True,
) -> ort.InferenceSession:
    """Open one graph with the first requested provider that starts; errors name the file.

    `providers`: ONNX Runtime provider names to try (default: the configuration's). `announce`:
    log the one line saying what runs (rt_ros.runtime.backends says it itself).
    """
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: ONNX file is missing")
    requested = list(providers) if providers is not None else config.onnx_runtime_names()
    available = set(ort.get_available_providers())
    wanted = [name for name in requested if name in available]
    if not wanted:
        raise ConfigError(
            f"providers: none of {requested} is available in this onnxruntime build "
            f"(available: {sorted(available)})"
        )
    skipped: list[str] = []
    for index, provider in enumerate(wanted):
        # Each attempt carries CPU as the last resort so a session always exists; a GPU provider
        # that cannot start is detected below by what the session reports, quietly.
        chain = [(provider, _provider_options(provider, config))]
        if provider != "CPUExecutionProvider":
            chain.append(("CPUExecutionProvider", {}))
        ort.set_default_logger_severity(_ORT_FATAL)
        try:
            session = ort.InferenceSession(
                str(path),
                sess_options=_session_options(config),
                providers=[name for name, _ in chain],
                provider_options=[options for _, options in chain],
            )
        except (
            ort.capi.onnxruntime_pybind11_state.InvalidProtobuf,
            ort.capi.onnxruntime_pybind11_state.InvalidGraph,
            ort.capi.onnxruntime_pybind11_state.Fail,
            ort.capi.onnxruntime_pybind11_state.NoSuchFile,
        ) as error:
            raise BundleError(
                f"{path}: not a loadable ONNX graph (truncated or corrupt?): {error}"
            ) from error
        except ort.capi.onnxruntime_pybind11_state.RuntimeException as error:
            if index == len(wanted) - 1:
                raise BundleError(
                    f"{path}: ONNX Runtime could not create a session: {error}"
                ) from error
            skipped.append(f"{provider} ({error})")
            continue
        finally:
            ort.set_default_logger_severity(_ORT_WARNING)
        if session.get_providers()[0] == provider:
            break
        skipped.append(provider)
    if config.precision == "f16" and session.get_providers()[0] == PROVIDER_ALIASES["cuda"]:
        # CUDA started with the float32 graph: open its float16 copy the same way.
        session = ort.InferenceSession(
            _float16_graph(path),
            sess_options=_session_options(config),
            providers=[name for name, _ in chain],
            provider_options=[options for _, options in chain],
        )
    if announce:
        reason = f" ({', '.join(skipped)} did not start)" if skipped else ""
        LOGGER.info("%s runs on %s%s", path.name, session.get_providers()[0], reason)
    return session


def _float16_graph(path: Path) -> bytes:
    """The graph with its float32 weights and arithmetic in float16, inputs and outputs still
    float32 (casts at the edges), serialised for a session; ONNX Runtime's own converter."""
    try:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as error:
        raise ConfigError(
            f"precision f16 converts the graphs at load and needs the onnx package "
            f"(pip install onnx): {error}"
        ) from error
    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    return model.SerializeToString()


def _spec(node_arg: ort.NodeArg) -> TensorSpec:
    dtype = _NUMPY_DTYPE_OF_ONNX.get(node_arg.type)
    if dtype is None:
        raise BundleError(f"{node_arg.name}: unsupported tensor type {node_arg.type}")
    return TensorSpec(node_arg.name, tuple(node_arg.shape), dtype)


class OnnxModel(InferenceGraph):
    """One graph on ONNX Runtime. Runs at batch size 1 go through IO binding with buffers made
    once (and CUDA graphs where asked); a graph with a symbolic batch axis also takes larger
    batches, through a plain run.

    `session`: one already opened from `path` (rt_ros.runtime.backends opens it while choosing).
    """

    precision = "f32"

    def __init__(
        self,
        path: Path,
        config: SessionConfig | None = None,
        session: ort.InferenceSession | None = None,
    ) -> None:
        self.path = Path(path)
        self.config = config or SessionConfig()
        self.session = session or create_session(self.path, self.config)
        self.provider: str = self.session.get_providers()[0]
        self.inputs: dict[str, TensorSpec] = {
            arg.name: _spec(arg) for arg in self.session.get_inputs()
        }
        self.outputs: dict[str, TensorSpec] = {
            arg.name: _spec(arg) for arg in self.session.get_outputs()
        }
        self._device = _DEVICE_OF_PROVIDER[self.provider]
        # A reduced precision only where its backend computes; a configuration that fell back
        # to the CPU provider computes f32.
        backends = _PRECISION_BACKENDS.get(self.config.precision, ())
        reduced = self.provider in {_PROVIDER_OF_ALIAS[alias] for alias in backends}
        self.precision = self.config.precision if reduced else "f32"
        specs = (*self.inputs.values(), *self.outputs.values())
        self._bound_shapes = {spec.name: spec.batch_one_shape() for spec in specs}
        bindable = all(shape is not None for shape in self._bound_shapes.values())
        self._binding = self._bind_buffers() if bindable else None

    @property
    def description(self) -> str:
        threads = self.config.intra_op_threads or "default"
        release = f"ONNX Runtime {ort.__version__}"
        return f"{release} {self.provider} {self.precision}, {threads} threads"

    @property
    def uses_io_binding(self) -> bool:
        return self._binding is not None

    def _bind_buffers(self) -> ort.IOBinding:
        binding = self.session.io_binding()
        self._input_values = {}
        for name, spec in self.inputs.items():
            value = ort.OrtValue.ortvalue_from_shape_and_type(
                list(self._bound_shapes[name]), spec.dtype, self._device, self.config.device_id
            )
            binding.bind_ortvalue_input(name, value)
            self._input_values[name] = value
        self._output_values = {}
        for name, spec in self.outputs.items():
            value = ort.OrtValue.ortvalue_from_shape_and_type(
                list(self._bound_shapes[name]), spec.dtype, self._device, self.config.device_id
            )
            binding.bind_ortvalue_output(name, value)
            self._output_values[name] = value
        return binding

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> list:
        """Run the graph; returns host arrays of the requested outputs (all by default)."""
        self.check_feeds(feeds)
        names = list(outputs) if outputs is not None else list(self.outputs)
        bound = self._binding is not None and all(
            array.shape == self._bound_shapes[name] for name, array in feeds.items()
        )
        if not bound:
            return self.session.run(names, dict(feeds))
        for name, array in feeds.items():
            self._input_values[name].update_inplace(np.ascontiguousarray(array))
        self.session.run_with_iobinding(self._binding)
        # Copies: the bound buffers are overwritten by the next run.
        return [np.array(self._output_values[name].numpy(), copy=True) for name in names]
