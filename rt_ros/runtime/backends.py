"""Which backend runs a graph: the first of the configured providers that starts.

Providers name ONNX Runtime execution providers (`tensorrt`, `cuda`, `cpu`) and the OpenVINO
backend (`openvino`); `auto` is CUDA, then ONNX Runtime's CPU provider, with OpenVINO (where the
package is installed) between them when the precision is below f32. One log line per graph says
what runs and what was passed over.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from rt_ros.runtime.errors import BundleError, ConfigError
from rt_ros.runtime.inference_graph import InferenceGraph
from rt_ros.runtime.onnx_session import (
    OPENVINO_PROVIDER,
    OnnxModel,
    SessionConfig,
    create_session,
)
from rt_ros.runtime.openvino_session import OpenVinoModel, openvino_installed

LOGGER = logging.getLogger(__name__)


def open_graph(path: Path | str, config: SessionConfig | None = None) -> InferenceGraph:
    """Load one ONNX graph on the first configured provider that starts; errors name the file."""
    path = Path(path)
    config = config or SessionConfig()
    if not path.is_file():
        raise BundleError(f"{path}: ONNX file is missing")
    candidates = config.provider_names()
    available = set(ort.get_available_providers())
    skipped: list[str] = []
    graph: InferenceGraph | None = None
    for index, provider in enumerate(candidates):
        last = index == len(candidates) - 1
        if provider == OPENVINO_PROVIDER:
            if not openvino_installed():
                skipped.append(f"{provider} (the openvino package is not installed)")
                continue
            graph = OpenVinoModel(path, config)
            break
        if provider not in available:
            skipped.append(f"{provider} (not in this onnxruntime build)")
            continue
        # The last candidate takes ONNX Runtime's own CPU fallback; earlier ones must start as
        # asked, or the next candidate (OpenVINO before ONNX Runtime's CPU) gets its turn.
        try:
            session = create_session(path, config, [provider], announce=False)
        except BundleError as error:
            if last:
                raise
            skipped.append(f"{provider} ({error})")
            continue
        if session.get_providers()[0] == provider or last:
            graph = OnnxModel(path, config, session=session)
            break
        skipped.append(f"{provider} (did not start)")
    if graph is None:
        raise ConfigError(
            f"providers: none of {candidates} can run {path.name}: {'; '.join(skipped)}"
        )
    reason = f" ({', '.join(skipped)})" if skipped else ""
    LOGGER.info("%s runs on %s%s", path.name, graph.description, reason)
    return graph
