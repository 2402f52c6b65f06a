"""`rt-ros bench`'s backend comparison: token agreement per dimension, and the side-by-side timing
of several backends (counts and ratios only; no timing decides a pass)."""

from types import SimpleNamespace

import numpy as np
import pytest

from rt_ros.runtime.backend_agreement import AgreementEpisode, measure_agreement
from rt_ros.runtime.benchmark import run_benchmark
from rt_ros.runtime.onnx_session import SessionConfig
from rt_ros.runtime.policy import Policy

HISTORY = 3
DIMENSIONS = ("x", "y")
BINS = 4


class ScriptedPolicy:
    """A stand-in Policy whose logits at each step pick the tokens `choose(instruction, tick)`."""

    def __init__(self, choose):
        self._choose = choose
        self.bundle = SimpleNamespace(manifest=SimpleNamespace(history_length=HISTORY))
        self.action_space = SimpleNamespace(
            dimensions=[SimpleNamespace(name=n) for n in DIMENSIONS]
        )
        self.steps = 0

    def reset(self, instruction):
        self.instruction = instruction

    def step(self, frame, stamp_s):
        self.steps += 1
        logits = np.zeros((len(DIMENSIONS), BINS), np.float32)
        for dimension, token in enumerate(self._choose(self.instruction, int(stamp_s))):
            logits[dimension, token] = 1.0
        self.last_logits = logits


def _episodes(count: int, length: int) -> list[AgreementEpisode]:
    frame = np.zeros((4, 4, 3), np.uint8)
    return [AgreementEpisode(f"task {index}", [frame] * length) for index in range(count)]


def test_agreement_counts_full_windows_per_dimension():
    reference = ScriptedPolicy(lambda _text, tick: (tick % BINS, 0))
    # y differs from the reference on every other tick, x never.
    other = ScriptedPolicy(lambda _text, tick: (tick % BINS, tick % 2))
    result = measure_agreement(
        {"ref": reference, "other": other}, _episodes(count=2, length=6), windows=100
    )
    # Each episode of 6 frames fills its window in 2 steps and compares the other 4.
    assert (result.episodes, result.windows) == (2, 8)
    np.testing.assert_array_equal(result.agreement("ref"), [1.0, 1.0])
    # Compared ticks 2..5 of each episode: y agrees at the even ones.
    np.testing.assert_array_equal(result.agreement("other"), [1.0, 0.5])
    assert result.to_dict()["agreement"]["other"] == {"x": 1.0, "y": 0.5}
    # The misses are tokens 1 against 0: within one bin.
    np.testing.assert_array_equal(result.agreement_within_one_bin("other"), [1.0, 1.0])


def test_agreement_within_one_bin_counts_neighbours_only():
    reference = ScriptedPolicy(lambda _text, _tick: (0, 0))
    other = ScriptedPolicy(lambda _text, tick: (1, 2 + tick % 2))
    result = measure_agreement({"ref": reference, "other": other}, _episodes(1, 5), windows=10)
    np.testing.assert_array_equal(result.agreement("other"), [0.0, 0.0])
    np.testing.assert_array_equal(result.agreement_within_one_bin("other"), [1.0, 0.0])


def test_agreement_stops_at_the_windows_asked_and_skips_short_episodes():
    policies = {label: ScriptedPolicy(lambda _text, _tick: (1, 2)) for label in ("ref", "other")}
    episodes = [*_episodes(count=1, length=HISTORY - 1), *_episodes(count=5, length=10)]
    result = measure_agreement(policies, episodes, windows=10)
    assert result.windows == 10
    assert result.episodes == 2  # the short one skipped, the second one cut short
    # 8 windows from the first long episode and 2 from the second, each filled first.
    assert policies["ref"].steps == 10 + 2 * (HISTORY - 1)


def test_agreement_before_any_window_is_unknown():
    result = measure_agreement(
        {"ref": ScriptedPolicy(lambda _text, _tick: (0, 0))}, _episodes(1, HISTORY - 1), 5
    )
    assert result.windows == 0
    assert np.isnan(result.agreement("ref")).all()


@pytest.fixture(scope="module")
def two_backends(tiny_bundle):
    """ONNX Runtime and OpenVINO, both f32, on the same bundle."""
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    cpu = SessionConfig(providers=("cpu",), spin_wait=False)
    openvino = SessionConfig(providers=("openvino",), intra_op_threads=1)
    return {
        "cpu": Policy.from_bundle(tiny_bundle, cpu),
        "openvino:f32": Policy.from_bundle(tiny_bundle, openvino),
    }


def test_backends_are_timed_side_by_side_against_the_first(two_backends):
    result = run_benchmark("rt1-tiny", two_backends, steps=4, frame_shape=(60, 80, 3))
    assert result.reference == "cpu"
    assert list(result.cached) == ["cpu", "openvino:f32"]
    assert all(len(s.samples["total_ms"]) == 4 for s in result.cached.values())
    assert len(result.naive.samples["encode_ms"]) == 4
    assert result.ratio_to_reference_p50("cpu") == pytest.approx(1.0)
    assert "OpenVINO" in result.backends["openvino:f32"]
    figures = result.to_dict()
    assert set(figures["ratio_to_reference_p50"]) == {"cpu", "openvino:f32"}


def test_f32_backends_agree_on_every_token_of_real_steps(two_backends):
    generator = np.random.default_rng(3)
    frames = [generator.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(10)]
    result = measure_agreement(
        two_backends, [AgreementEpisode("pick coke can", frames)], windows=5
    )
    assert result.windows == 5
    # f32 on two backends: logits differ by ~1e-5, so only an exact tie could flip a token.
    assert result.agreement("openvino:f32").min() >= 0.8
