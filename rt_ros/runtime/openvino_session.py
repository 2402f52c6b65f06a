"""OpenVINO on the CPU: the bundle's ONNX graphs compiled directly, in f32 or bf16.

OpenVINO reads ONNX itself, so a bundle carries no second model format. On CPUs with AVX-512 BF16
or AMX, bf16 runs the matrix products natively (about 2-3x ONNX Runtime fp32 on the paper-size
RT-1, issue 11); the runtime measures the action-token agreement with fp32 (`rt-ros bench`).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from rt_ros.runtime.errors import BundleError
from rt_ros.runtime.inference_graph import InferenceGraph, TensorSpec
from rt_ros.runtime.onnx_session import OPENVINO_PROVIDER, SessionConfig

DEVICE = "CPU"
# rt_ros precision names -> OpenVINO's inference precision hint.
_PRECISION_HINTS = {"f32": "f32", "bf16": "bf16"}
# One request at a time, as fast as it can: a control loop, not a throughput server. Threads are
# not pinned to cores: beside other processes (ROS nodes, a camera driver) a pinned thread waits
# for its busy core, and rt1 bf16 measured 1.2x slower pinned on a shared 2-core machine.
_LATENCY_PROPERTIES = {
    "PERFORMANCE_HINT": "LATENCY",
    "NUM_STREAMS": "1",
    "ENABLE_CPU_PINNING": False,
}


def openvino_installed() -> bool:
    """Whether the `openvino` package (the `openvino` extra) can be imported."""
    return importlib.util.find_spec("openvino") is not None


@functools.cache
def _core():  # -> openvino.Core; openvino is optional, so imported only here
    """One OpenVINO Core per process: it owns the CPU plugin and its thread pool."""
    import openvino

    return openvino.Core()


def openvino_version() -> str:
    """The installed OpenVINO release, e.g. 2026.4.1."""
    import openvino

    return openvino.__version__.split("-")[0]


def _spec(port) -> TensorSpec:  # port: an openvino Output of a compiled model
    shape = port.get_partial_shape()
    dims = tuple(dim.get_length() if dim.is_static else None for dim in shape)
    return TensorSpec(port.get_any_name(), dims, port.get_element_type().to_dtype().type)


def _fix_batch_size_one(model) -> None:  # model: an openvino Model
    """A symbolic batch axis becomes 1: the CPU plugin plans fixed shapes best, and one request's
    own tensors are written in place every run. OpenVINO graphs run one item at a time."""
    shapes = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        if shape.rank.is_static and len(shape) > 0 and shape[0].is_dynamic:
            shapes[port.get_any_name()] = [1, *(dim.get_length() for dim in list(shape)[1:])]
    if shapes:
        model.reshape(shapes)


class OpenVinoModel(InferenceGraph):
    """One graph compiled by OpenVINO for the CPU, with one inference request reused every run."""

    def __init__(self, path: Path, config: SessionConfig | None = None) -> None:
        self.path = Path(path)
        self.config = config or SessionConfig(providers=("openvino",))
        if not self.path.is_file():
            raise BundleError(f"{self.path}: ONNX file is missing")
        core = _core()
        properties = dict(_LATENCY_PROPERTIES)
        properties["INFERENCE_PRECISION_HINT"] = _PRECISION_HINTS[self.config.precision]
        if self.config.intra_op_threads:
            properties["INFERENCE_NUM_THREADS"] = str(self.config.intra_op_threads)
        try:
            model = core.read_model(str(self.path))
            _fix_batch_size_one(model)
            self._compiled = core.compile_model(model, DEVICE, properties)
        except RuntimeError as error:
            # OpenVINO's message starts with its source location; its last line says what.
            reason = [line for line in str(error).splitlines() if line.strip()][-1:]
            raise BundleError(
                f"{self.path}: not a loadable ONNX graph (truncated or corrupt?): OpenVINO: "
                f"{''.join(reason)}"
            ) from error
        self._request = self._compiled.create_infer_request()
        # What the plugin really does: bf16 is refused (f32) on CPUs without bf16 support.
        hint = self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.precision = "bf16" if hint == "bf16" else "f32"
        self.threads = int(self._compiled.get_property("INFERENCE_NUM_THREADS"))
        self.provider = OPENVINO_PROVIDER
        self.inputs = {spec.name: spec for spec in map(_spec, self._compiled.inputs)}
        self.outputs = {spec.name: spec for spec in map(_spec, self._compiled.outputs)}

    @property
    def description(self) -> str:
        """What runs, for the one log line: release, device, precision, threads."""
        return (
            f"{OPENVINO_PROVIDER} {openvino_version()} {DEVICE} {self.precision}, "
            f"{self.threads or 'default'} threads"
        )

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> list:
        """Run the graph; returns copies of the requested outputs (all by default)."""
        self.check_feeds(feeds)
        names = list(outputs) if outputs is not None else list(self.outputs)
        # Written into the request's own input tensors: OpenVINO's feed conversion turns a 0-d
        # array (current_step) into shape [1], which the compiled graph refuses.
        for name, array in feeds.items():
            self._request.get_tensor(name).data[...] = array
        self._request.infer()
        return [np.array(self._request.get_tensor(name).data, copy=True) for name in names]
