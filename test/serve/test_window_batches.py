"""Several robots' steps in one batch equal each robot's own step, whatever their history
lengths, and a refused item leaves the others running."""

from __future__ import annotations

import numpy as np
import pytest

from rt_ros.runtime.errors import FrameError, TokenWindowError
from rt_ros.runtime.onnx_session import SessionConfig
from rt_ros.runtime.window_policy import WindowInput, WindowPolicy, WindowStep

INSTRUCTIONS = ("pick up the apple", "open the drawer", "knock the coke can over")


def _inputs(policy: WindowPolicy, history_lengths: list[int], seed: int = 0) -> list[WindowInput]:
    rng = np.random.default_rng(seed)
    items = []
    for index, frames in enumerate(history_lengths):
        rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        history = rng.standard_normal((frames, *policy.token_shape)).astype(np.float32)
        items.append(WindowInput(INSTRUCTIONS[index % len(INSTRUCTIONS)], rgb, history))
    return items


def test_the_exported_bundle_batches(window_policy) -> None:
    assert window_policy.batches
    assert window_policy.bundle.frame_encoder.batches
    assert window_policy.bundle.policy.batches


def test_a_batch_equals_each_step_alone(window_policy) -> None:
    # Mixed history lengths: 5 (full window) three times, 0, 2 and 5 again.
    items = _inputs(window_policy, [5, 0, 5, 2, 5, 0, 2])
    batch = list(window_policy.step_batch(items))
    assert len(batch) == len(items)
    for item, result in zip(items, batch, strict=True):
        alone = window_policy.step(item.instruction, item.rgb_frame, item.history)
        assert isinstance(result, WindowStep)
        np.testing.assert_allclose(result.frame_tokens, alone.frame_tokens, rtol=1e-4, atol=1e-5)
        assert result.action.tokens == alone.action.tokens
        assert result.action.mode == alone.action.mode


def test_a_refused_item_leaves_the_rest_of_its_batch_running(window_policy) -> None:
    good, too_long, _ = _inputs(window_policy, [3, 6, 1])
    bad_frame = WindowInput("open the drawer", np.zeros((4, 4), np.uint8), good.history)
    results = list(window_policy.step_batch([good, too_long, bad_frame]))
    assert isinstance(results[0], WindowStep)
    assert isinstance(results[1], TokenWindowError)
    assert "at most 5 earlier frames" in str(results[1])
    assert isinstance(results[2], FrameError)
    alone = window_policy.step(good.instruction, good.rgb_frame, good.history)
    assert results[0].action.tokens == alone.action.tokens


def test_graphs_without_a_batch_axis_run_the_steps_in_turn(bundle_dir) -> None:
    """OpenVINO compiles the graphs at batch size 1: the same results, one item at a time."""
    pytest.importorskip("openvino", reason="the openvino extra")
    openvino = WindowPolicy.from_bundle(bundle_dir, SessionConfig(providers=("openvino",)))
    onnx_runtime = WindowPolicy.from_bundle(bundle_dir, SessionConfig(providers=("cpu",)))
    assert not openvino.batches
    items = _inputs(openvino, [5, 0, 5])
    for item, result in zip(items, openvino.step_batch(items), strict=True):
        expected = onnx_runtime.step(item.instruction, item.rgb_frame, item.history)
        assert isinstance(result, WindowStep)
        np.testing.assert_allclose(result.frame_tokens, expected.frame_tokens, atol=1e-3)
