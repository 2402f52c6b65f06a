"""The frame-token cache: RT-1's start-of-episode layout, the sliding window, resets and gaps."""

import numpy as np
import pytest

from rt_ros.runtime.errors import ConfigError, FrameError
from rt_ros.runtime.token_cache import FrameTokenCache

HISTORY, TOKENS, DIM = 6, 8, 4


def tokens(value: float) -> np.ndarray:
    return np.full((TOKENS, DIM), value, np.float32)


def slot_values(cache: FrameTokenCache) -> list[float]:
    return [float(cache.window()[0, slot, 0, 0]) for slot in range(HISTORY)]


def test_start_of_episode_writes_frame_t_at_slot_t_and_reads_step_t():
    cache = FrameTokenCache(HISTORY, TOKENS, DIM)
    for t in range(HISTORY):
        cache.append(tokens(t + 1), stamp_s=float(t))
        assert cache.current_step == t
        assert slot_values(cache) == [float(v + 1) if v <= t else 0.0 for v in range(HISTORY)]


def test_full_window_shifts_left_by_one_per_frame():
    cache = FrameTokenCache(HISTORY, TOKENS, DIM)
    for t in range(HISTORY + 3):
        cache.append(tokens(t + 1), stamp_s=float(t))
    assert cache.current_step == HISTORY - 1
    assert slot_values(cache) == [4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert cache.stamps_s == (3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    assert cache.window().shape == (1, HISTORY, TOKENS, DIM)


def test_reset_forgets_everything():
    cache = FrameTokenCache(HISTORY, TOKENS, DIM)
    cache.append(tokens(1), 0.0)
    cache.reset()
    assert len(cache) == 0
    assert not cache.window().any()
    with pytest.raises(FrameError, match="empty"):
        _ = cache.current_step


def test_gap_longer_than_limit_drops_history():
    cache = FrameTokenCache(HISTORY, TOKENS, DIM, max_gap_s=1.0)
    cache.append(tokens(1), 0.0)
    cache.append(tokens(2), 0.5)
    cache.append(tokens(3), 2.0)  # 1.5 s after the last frame
    assert cache.stamps_s == (2.0,)
    assert cache.current_step == 0
    assert slot_values(cache)[:2] == [3.0, 0.0]
    assert cache.history_drops == 1


def test_gap_within_limit_keeps_history():
    cache = FrameTokenCache(HISTORY, TOKENS, DIM, max_gap_s=1.0)
    cache.append(tokens(1), 0.0)
    cache.append(tokens(2), 1.0)
    assert len(cache) == 2
    assert cache.history_drops == 0


@pytest.mark.parametrize("stamp", [0.0, -1.0, float("nan")])
def test_stamps_must_increase_and_be_finite(stamp):
    cache = FrameTokenCache(HISTORY, TOKENS, DIM)
    cache.append(tokens(1), 0.0)
    with pytest.raises(FrameError, match="stamp"):
        cache.append(tokens(2), stamp)
    assert len(cache) == 1


def test_wrong_token_shape_is_refused_and_loses_nothing():
    cache = FrameTokenCache(HISTORY, TOKENS, DIM)
    cache.append(tokens(1), 0.0)
    with pytest.raises(FrameError, match="shape"):
        cache.append(np.zeros((TOKENS, DIM + 1), np.float32), 1.0)
    assert cache.stamps_s == (0.0,)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"history_length": 0}, "history_length"),
        ({"tokens_per_frame": 0}, "tokens_per_frame"),
        ({"max_gap_s": 0.0}, "max_gap_s"),
    ],
)
def test_bad_configuration_names_the_field(kwargs, field):
    arguments = {"history_length": HISTORY, "tokens_per_frame": TOKENS, "token_dim": DIM}
    arguments.update(kwargs)
    with pytest.raises(ConfigError, match=field):
        FrameTokenCache(**arguments)
