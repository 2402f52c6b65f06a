"""RT-1's attention mask and readout positions, checked on small sizes against the stated rules."""

import pytest
import torch

from rt_ros.model.attention_mask import build_attention_mask, readout_positions

HISTORY, IMAGE_TOKENS, ACTION_DIMS = 3, 2, 3
PER_STEP = IMAGE_TOKENS + ACTION_DIMS
LENGTH = HISTORY * PER_STEP


@pytest.fixture(scope="module")
def mask() -> torch.Tensor:
    return build_attention_mask(HISTORY, IMAGE_TOKENS, ACTION_DIMS)


def _step(position: int) -> int:
    return position // PER_STEP


def _is_action(position: int) -> bool:
    return position % PER_STEP >= IMAGE_TOKENS


def test_shape_and_dtype(mask):
    assert mask.shape == (LENGTH, LENGTH)
    assert mask.dtype == torch.bool


def test_mask_is_causal(mask):
    assert not mask.triu(diagonal=1).any()


def test_image_tokens_attend_to_everything_before_them(mask):
    for query in range(LENGTH):
        if not _is_action(query):
            assert mask[query, : query + 1].all()


def test_action_never_attends_to_actions_of_earlier_steps(mask):
    for query in range(LENGTH):
        for key in range(LENGTH):
            if _is_action(query) and _is_action(key) and _step(key) < _step(query):
                assert not mask[query, key], (query, key)


def test_action_never_attends_to_own_step_actions_at_or_before_itself(mask):
    for query in range(LENGTH):
        for key in range(query + 1):
            if _is_action(query) and _is_action(key) and _step(key) == _step(query):
                assert not mask[query, key], (query, key)


def test_action_rows_see_exactly_the_image_tokens_up_to_their_step(mask):
    for query in range(LENGTH):
        if _is_action(query):
            visible = {key for key in range(LENGTH) if mask[query, key]}
            expected = {
                key for key in range(LENGTH) if not _is_action(key) and _step(key) <= _step(query)
            }
            assert visible == expected


def test_every_row_attends_somewhere(mask):
    assert mask.any(dim=1).all()


def test_readout_positions_follow_the_shifted_formula():
    positions = readout_positions(HISTORY, IMAGE_TOKENS, ACTION_DIMS)
    assert positions.shape == (HISTORY, ACTION_DIMS)
    assert positions.dtype == torch.int64
    for step in range(HISTORY):
        for k in range(ACTION_DIMS):
            assert positions[step, k] == step * PER_STEP + IMAGE_TOKENS - 1 + k


def test_rt1_readout_spans_last_image_token_to_last_but_one_action():
    positions = readout_positions(6, 8, 11)
    assert positions[0].tolist() == list(range(7, 18))
    assert positions[5].tolist() == list(range(5 * 19 + 7, 5 * 19 + 18))
    assert positions.max() < 6 * 19
