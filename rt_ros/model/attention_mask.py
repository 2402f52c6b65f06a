"""RT-1's attention mask over `history_length` steps of [image tokens, action tokens]."""

from __future__ import annotations

import torch


def build_attention_mask(
    history_length: int, tokens_per_frame: int, num_action_dims: int
) -> torch.Tensor:
    """Bool [S, S], True where query row i may attend to key column j (S = T * (N + A)).

    Causal; in addition an action position never sees action positions of earlier steps, nor
    those of its own step at or before itself (so action rows see image tokens only).
    """
    tokens_per_step = tokens_per_frame + num_action_dims
    position = torch.arange(history_length * tokens_per_step)
    step = position // tokens_per_step
    is_action = position % tokens_per_step >= tokens_per_frame

    query_pos, key_pos = position[:, None], position[None, :]  # [S, 1], [1, S]
    query_step, key_step = step[:, None], step[None, :]
    both_actions = is_action[:, None] & is_action[None, :]  # [S, S]

    causal = key_pos <= query_pos
    earlier_step_action = both_actions & (key_step < query_step)
    own_step_action_up_to_self = both_actions & (key_step == query_step) & (key_pos <= query_pos)
    return causal & ~earlier_step_action & ~own_step_action_up_to_self


def readout_positions(
    history_length: int, tokens_per_frame: int, num_action_dims: int
) -> torch.Tensor:
    """Int64 [T, A]: the row holding the logits of action k of step t, `t*(N+A) + N - 1 + k`.

    Outputs are shifted by one (next-token style): action k is read one position before its own.
    """
    tokens_per_step = tokens_per_frame + num_action_dims
    step_start = torch.arange(history_length)[:, None] * tokens_per_step  # [T, 1]
    offset = tokens_per_frame - 1 + torch.arange(num_action_dims)[None, :]  # [1, A]
    return step_start + offset
