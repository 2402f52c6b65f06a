"""Policy over a real exported rt1-tiny bundle: the cache is exact, frames are encoded once, bad
input is refused with a clear error and loses nothing."""

import shutil

import numpy as np
import pytest

from rt_ros.runtime.benchmark import NaiveStepper
from rt_ros.runtime.errors import ActionDecodeError, FrameError, InstructionError
from rt_ros.runtime.manifest import BundleManifest, sha256_of
from rt_ros.runtime.policy import Policy

onnx = pytest.importorskip("onnx", reason="building test graphs needs the onnx package")


@pytest.fixture(scope="module")
def policy(tiny_bundle):
    return Policy.from_bundle(tiny_bundle)


def frames(count: int, seed: int = 0, shape=(120, 160, 3)) -> list[np.ndarray]:
    generator = np.random.default_rng(seed)
    return [generator.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


class EncoderSpy:
    """Counts frame-encoder runs while letting the real graph compute."""

    def __init__(self, model):
        self.model = model
        self.calls = 0
        self._run = model.run

    def __enter__(self):
        def counting_run(*args, **kwargs):
            self.calls += 1
            return self._run(*args, **kwargs)

        self.model.run = counting_run
        return self

    def __exit__(self, *exc):
        del self.model.run


def test_step_returns_a_decoded_action_with_stage_timings(policy):
    policy.reset("pick coke can")
    action = policy.step(frames(1)[0], stamp_s=1.0)
    assert len(action.tokens) == len(policy.action_space.dimensions)
    assert set(action.values) == {d.name for d in policy.action_space.dimensions}
    assert action.mode in {"arm", "base", "terminate"}
    timings = policy.last_timings
    assert timings.encode_ms > 0
    assert timings.transformer_ms > 0
    assert timings.total_ms >= timings.encode_ms + timings.transformer_ms


def test_cached_steps_equal_re_encoding_the_whole_window(policy):
    """The cache is exact: same actions as a policy that re-encodes all frames every tick."""
    policy.reset("move the apple near the sponge")
    naive = NaiveStepper(policy)
    embedding = policy.bundle.instruction_encoder.encode("move the apple near the sponge")
    for tick, frame in enumerate(frames(10, seed=1)):
        cached = policy.step(frame, stamp_s=float(tick))
        reference, _ = naive.step(frame, embedding[np.newaxis].astype(np.float32))
        assert cached.tokens == reference.tokens, f"tick {tick}"


def test_no_frame_is_encoded_twice(policy):
    policy.reset("open the top drawer")
    sequence = frames(9, seed=2)
    with EncoderSpy(policy.bundle.frame_encoder) as spy:
        for tick, frame in enumerate(sequence):
            first = policy.step(frame, stamp_s=10.0 + tick)
            again = policy.step(frame, stamp_s=10.0 + tick)  # the same frame at the next tick
            assert again is first
    assert spy.calls == len(sequence)
    assert policy.cache.current_step == policy.cache.history_length - 1


def test_new_instruction_resets_the_history(policy):
    policy.reset("pick coke can")
    for tick, frame in enumerate(frames(3, seed=3)):
        policy.step(frame, stamp_s=float(tick))
    assert len(policy.cache) == 3
    policy.reset("knock the can over")
    assert len(policy.cache) == 0
    policy.step(frames(1, seed=4)[0], stamp_s=0.5)  # stamps may restart after a reset
    assert policy.cache.current_step == 0


def test_step_without_instruction_is_refused(tiny_bundle):
    fresh = Policy.from_bundle(tiny_bundle)
    with pytest.raises(InstructionError, match="reset"):
        fresh.step(frames(1)[0], stamp_s=0.0)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((120, 160, 4), np.uint8), "3 channels"),
        (np.zeros((120, 160, 3), np.float32), "dtype"),
        (np.zeros((120, 160), np.uint8), "shape"),
        (np.zeros((0, 160, 3), np.uint8), "empty"),
    ],
)
def test_bad_frames_are_refused_and_lose_nothing(policy, frame, message):
    policy.reset("pick coke can")
    policy.step(frames(1)[0], stamp_s=1.0)
    with pytest.raises(FrameError, match=message):
        policy.step(frame, stamp_s=2.0)
    assert policy.cache.stamps_s == (1.0,)
    policy.step(frames(1, seed=5)[0], stamp_s=2.0)
    assert len(policy.cache) == 2


def test_older_frame_is_refused(policy):
    policy.reset("pick coke can")
    policy.step(frames(1)[0], stamp_s=5.0)
    with pytest.raises(FrameError, match="older"):
        policy.step(frames(1, seed=6)[0], stamp_s=4.0)


def test_gap_longer_than_limit_restarts_history(tiny_bundle):
    policy = Policy.from_bundle(tiny_bundle, max_history_gap_s=1.0)
    policy.reset("pick coke can")
    sequence = frames(4, seed=7)
    for tick, frame in enumerate(sequence[:3]):
        policy.step(frame, stamp_s=0.3 * tick)
    policy.step(sequence[3], stamp_s=5.0)
    assert policy.cache.stamps_s == (5.0,)


def _nan_policy_graph(path, manifest: BundleManifest) -> None:
    """A real ONNX graph with the policy's inputs whose logits are all NaN."""
    from onnx import TensorProto, helper

    space = manifest.action_space
    shape = [1, len(space.dimensions), space.num_bins]
    window = [1, manifest.history_length, manifest.tokens_per_frame, manifest.token_dim]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["frame_tokens"], ["total"], keepdims=0),
            helper.make_node("Mul", ["total", "nan"], ["nan_scalar"]),
            helper.make_node("Expand", ["nan_scalar", "shape"], ["action_logits"]),
        ],
        "nan_policy",
        [
            helper.make_tensor_value_info("frame_tokens", TensorProto.FLOAT, window),
            helper.make_tensor_value_info("current_step", TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("action_logits", TensorProto.FLOAT, shape)],
        initializer=[
            helper.make_tensor("nan", TensorProto.FLOAT, [], [float("nan")]),
            helper.make_tensor("shape", TensorProto.INT64, [3], shape),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.save(model, str(path))


def test_nan_logits_raise_a_decode_error_naming_the_dimension(tiny_bundle, tmp_path):
    bundle = tmp_path / "nan-bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = BundleManifest.load(bundle)
    _nan_policy_graph(bundle / "policy.onnx", manifest)
    data = manifest.to_dict()
    data["sha256"]["policy.onnx"] = sha256_of(bundle / "policy.onnx")
    BundleManifest.from_dict(data).write(bundle)
    policy = Policy.from_bundle(bundle)
    policy.reset("pick coke can")
    first_dimension = policy.action_space.dimensions[0].name
    with pytest.raises(ActionDecodeError, match=first_dimension):
        policy.step(frames(1)[0], stamp_s=0.0)
