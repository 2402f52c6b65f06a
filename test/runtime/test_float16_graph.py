"""precision f16: the float16 copy of a bundle's graphs that CUDA runs, checked here on the CPU."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from rt_ros.runtime import onnx_session

onnx = pytest.importorskip("onnx", reason="the float16 copy is made with the onnx package")


def _feeds(session: ort.InferenceSession) -> dict[str, np.ndarray]:
    """Camera-like uint8 pixels, a unit-scale embedding and tokens, the last history slot."""
    generator = np.random.default_rng(3)
    feeds = {}
    for arg in session.get_inputs():
        shape = [1 if isinstance(size, str) else size for size in arg.shape]
        if arg.type == "tensor(uint8)":
            feeds[arg.name] = generator.integers(0, 256, shape, dtype=np.uint8)
        elif arg.type == "tensor(int64)":
            feeds[arg.name] = np.full(shape, 5, dtype=np.int64)
        else:
            values = generator.standard_normal(shape).astype(np.float32)
            norm = np.linalg.norm(values, axis=-1, keepdims=True)
            feeds[arg.name] = values / norm if "embedding" in arg.name else values
    return feeds


@pytest.mark.parametrize("graph", ["frame_encoder.onnx", "policy.onnx"])
def test_the_float16_copy_keeps_float32_io_and_computes_the_same_within_half_precision(
    tiny_bundle, graph
):
    path = tiny_bundle / graph
    half = onnx.load_from_string(onnx_session._float16_graph(path))
    original = onnx.load(str(path))
    io_types = [(v.name, v.type.tensor_type.elem_type) for v in original.graph.input]
    assert [(v.name, v.type.tensor_type.elem_type) for v in half.graph.input] == io_types
    assert {v.type.tensor_type.elem_type for v in half.graph.output} == {onnx.TensorProto.FLOAT}
    weights = [t for t in half.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert sum(onnx.numpy_helper.to_array(t).size for t in weights) > 10_000
    reference = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = _feeds(reference)
    (want,) = reference.run(None, feeds)
    copy = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = copy.run(None, feeds)
    assert got.dtype == np.float32
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(got, want, atol=0.01 * scale, rtol=0)
    assert not np.array_equal(got, want)  # it did compute in half precision
