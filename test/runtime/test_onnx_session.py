"""ONNX sessions: provider fallback, IO binding, checks before ONNX Runtime sees a tensor."""

import numpy as np
import pytest
from log_records import records_of

from rt_ros.runtime import onnx_session
from rt_ros.runtime.errors import BundleError, ConfigError
from rt_ros.runtime.onnx_session import OnnxModel, SessionConfig

onnx = pytest.importorskip("onnx", reason="building test graphs needs the onnx package")
from onnx import TensorProto, helper  # noqa: E402


def _affine_graph(path, fixed: bool = True):
    """y = x * 2 + b on float [1, 3] (or a dynamic batch), a real ONNX model."""
    batch = 1 if fixed else "batch"
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "two"], ["x2"]),
            helper.make_node("Add", ["x2", "b"], ["y"]),
        ],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])],
        initializer=[
            helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0]),
            helper.make_tensor("b", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.save(model, str(path))
    return path


@pytest.fixture
def session_log():
    """What the session module logs, on its own logger."""
    with records_of(onnx_session.LOGGER) as records:
        yield records


def test_auto_on_onnx_runtime_falls_back_to_cpu_and_says_so_once(tmp_path, session_log):
    path = _affine_graph(tmp_path / "affine.onnx")
    model = OnnxModel(path, SessionConfig(providers=("auto",)))
    lines = [r.getMessage() for r in session_log if "runs on" in r.getMessage()]
    assert len(lines) == 1
    assert model.provider in lines[0]
    assert model.provider in {"CUDAExecutionProvider", "CPUExecutionProvider"}


def test_batch_one_runs_use_io_binding_and_a_batch_axis_takes_larger_batches(tmp_path):
    fixed = OnnxModel(_affine_graph(tmp_path / "fixed.onnx"), SessionConfig(providers=("cpu",)))
    batched = OnnxModel(
        _affine_graph(tmp_path / "dynamic.onnx", fixed=False), SessionConfig(providers=("cpu",))
    )
    # Both bind buffers for batch size 1 (the node's runs, CUDA graphs); only one batches.
    assert fixed.uses_io_binding
    assert batched.uses_io_binding
    assert not fixed.batches
    assert batched.batches
    x = np.array([[1.0, -1.0, 0.5]], np.float32)
    (y_fixed,) = fixed.run({"x": x})
    (y_batched,) = batched.run({"x": x})
    np.testing.assert_allclose(y_fixed, [[3.0, 0.0, 4.0]])
    np.testing.assert_array_equal(y_fixed, y_batched)
    # Results are copies: a second run does not change the first result.
    fixed.run({"x": np.zeros((1, 3), np.float32)})
    batched.run({"x": np.zeros((1, 3), np.float32)})
    np.testing.assert_allclose(y_fixed, [[3.0, 0.0, 4.0]])
    np.testing.assert_allclose(y_batched, [[3.0, 0.0, 4.0]])
    # Three rows in one run, then batch size 1 again through the bound buffers.
    rows = np.array([[1.0, -1.0, 0.5], [0.0, 0.0, 0.0], [2.0, 2.0, 2.0]], np.float32)
    (y_rows,) = batched.run({"x": rows})
    np.testing.assert_allclose(y_rows, rows * 2 + [1.0, 2.0, 3.0])
    (y_again,) = batched.run({"x": x})
    np.testing.assert_allclose(y_again, [[3.0, 0.0, 4.0]])


def test_feeds_are_checked_before_onnx_runtime(tmp_path):
    model = OnnxModel(_affine_graph(tmp_path / "a.onnx"), SessionConfig(providers=("cpu",)))
    with pytest.raises(ValueError, match="must be float32"):
        model.run({"x": np.zeros((1, 3), np.float64)})
    with pytest.raises(ValueError, match=r"shape \(1, 3\)"):
        model.run({"x": np.zeros((2, 3), np.float32)})
    with pytest.raises(ValueError, match="missing inputs"):
        model.run({})


def test_missing_truncated_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(BundleError, match="missing"):
        OnnxModel(tmp_path / "nothing.onnx")
    good = _affine_graph(tmp_path / "good.onnx").read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(BundleError, match=r"truncated\.onnx"):
        OnnxModel(truncated, SessionConfig(providers=("cpu",)))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx file" * 10)
    with pytest.raises(BundleError, match=r"garbage\.onnx"):
        OnnxModel(garbage, SessionConfig(providers=("cpu",)))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"providers": ("gpu9000",)}, "providers"),
        ({"providers": ()}, "providers"),
        ({"intra_op_threads": -1}, "intra_op_threads"),
        ({"graph_optimization": "max"}, "graph_optimization"),
        ({"precision": "fp8"}, "precision"),
        ({"providers": ("cpu",), "precision": "bf16"}, "precision bf16 needs the openvino"),
        ({"providers": ("openvino",), "precision": "tf32"}, "precision tf32 needs the cuda"),
        ({"providers": ("cpu",), "precision": "f16"}, "precision f16 needs the cuda or tensorrt"),
    ],
)
def test_bad_session_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        SessionConfig(**kwargs)


def test_provider_aliases_expand_in_order_without_duplicates():
    config = SessionConfig(providers=("tensorrt", "auto", "cpu"))
    assert config.provider_names() == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    # Only OpenVINO computes bf16: there auto tries it before ONNX Runtime's CPU provider.
    assert SessionConfig(providers=("auto",), precision="bf16").provider_names() == [
        "CUDAExecutionProvider",
        "OpenVINO",
        "CPUExecutionProvider",
    ]


def test_cuda_computes_strict_f32_unless_tf32_is_asked_for():
    # ONNX Runtime's CUDA provider would use TF32 tensor cores by itself; f32 means f32.
    strict = onnx_session._provider_options("CUDAExecutionProvider", SessionConfig())
    assert strict["use_tf32"] == "0"
    tf32 = SessionConfig(providers=("auto",), precision="tf32")
    assert onnx_session._provider_options("CUDAExecutionProvider", tf32)["use_tf32"] == "1"
    # auto at tf32 is auto at f32: OpenVINO computes no TF32.
    assert tf32.provider_names() == ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize("precision", ["tf32", "f16"])
def test_a_reduced_precision_graph_that_fell_back_to_the_cpu_says_f32(tmp_path, precision):
    path = _affine_graph(tmp_path / "affine.onnx")
    model = OnnxModel(path, SessionConfig(providers=("cuda", "cpu"), precision=precision))
    if model.provider == "CUDAExecutionProvider":
        pytest.skip("a GPU is present: the fallback cannot be seen")
    assert model.precision == "f32"
    assert " f32," in model.description


def test_graphs_that_always_run_on_onnx_runtime_leave_openvino_out():
    config = SessionConfig(providers=("openvino",), precision="bf16", intra_op_threads=2)
    onnx_runtime = config.for_onnx_runtime()
    assert onnx_runtime.provider_names() == ["CPUExecutionProvider"]
    assert (onnx_runtime.precision, onnx_runtime.intra_op_threads) == ("f32", 2)
    assert SessionConfig(providers=("auto",)).for_onnx_runtime().provider_names() == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]


def test_spin_wait_sets_onnx_runtime_thread_spinning():
    spinning = onnx_session._session_options(SessionConfig(spin_wait=True))
    passive = onnx_session._session_options(SessionConfig(spin_wait=False))
    assert spinning.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert passive.get_session_config_entry("session.intra_op.allow_spinning") == "0"
