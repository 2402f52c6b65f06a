"""The exact-work path: the last layer computes only the rows read out, with the same logits as
the full sequence (issue 11, item 2)."""

import pytest
import torch

from rt_ros.model.policy_transformer import PolicyTransformer
from rt_ros.model.presets import get_preset

# The same math on fewer rows: only the matmul blocking (float summation order) may differ.
LOGIT_ATOL = 1e-5


@pytest.mark.parametrize("preset_name", ["rt1-tiny", "rt1"])
@torch.no_grad()
def test_readout_rows_equal_the_full_sequence_at_every_step(preset_name):
    preset = get_preset(preset_name)
    torch.manual_seed(0)
    policy = PolicyTransformer(preset).eval()
    generator = torch.Generator().manual_seed(1)
    window = torch.randn(
        2, preset.history_length, preset.tokens_per_frame, preset.token_dim, generator=generator
    )
    full = policy.sequence_logits(window)  # [B, S, V]: every row, every layer
    for step in range(preset.history_length + 1):  # one past the window reads the last step
        readout = policy(window, torch.tensor(step, dtype=torch.int64))
        rows = policy.readout_positions[min(step, preset.history_length - 1)]
        torch.testing.assert_close(readout, full[:, rows], atol=LOGIT_ATOL, rtol=0)


@torch.no_grad()
def test_only_the_last_layer_is_cut_to_the_readout_rows():
    preset = get_preset("rt1-tiny")
    policy = PolicyTransformer(preset).eval()
    shapes = []
    hooks = [
        layer.register_forward_hook(lambda _m, _args, out: shapes.append(tuple(out.shape)))
        for layer in policy.transformer.layers
    ]
    window = torch.randn(1, preset.history_length, preset.tokens_per_frame, preset.token_dim)
    policy(window, torch.tensor(preset.history_length - 1))
    for hook in hooks:
        hook.remove()
    sequence = preset.sequence_length
    expected = [(1, sequence, preset.model_dim)] * (preset.num_layers - 1)
    assert shapes == [*expected, (1, preset.num_action_dims, preset.model_dim)]
