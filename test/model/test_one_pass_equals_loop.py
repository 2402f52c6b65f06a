"""One transformer pass reproduces the reference's 11-pass autoregressive action loop."""

import pytest
import torch

from rt_ros.model.efficientnet import FilmEfficientNet
from rt_ros.model.policy_transformer import PolicyTransformer
from rt_ros.model.presets import get_preset
from rt_ros.model.rt1 import RT1

PRESET = get_preset("rt1-tiny")
T, N, A = PRESET.history_length, PRESET.tokens_per_frame, PRESET.num_action_dims


@pytest.fixture(scope="module")
def policy() -> PolicyTransformer:
    torch.manual_seed(0)
    return PolicyTransformer(PRESET).eval()


def _frame_tokens(held_frames: int, seed: int) -> torch.Tensor:
    """Random tokens in the first `held_frames` slots and zeros after, as at episode start."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randn(2, T, N, PRESET.token_dim, generator=generator)
    tokens[:, held_frames:] = 0.0
    return tokens


def _reference_loop(policy, frame_tokens, step):
    """The reference's inference: pass k feeds the tokens so far and reads dimension k."""
    action_tokens = torch.zeros(frame_tokens.shape[0], T, A, dtype=torch.int64)
    rows = []
    for k in range(A):
        logits = policy.sequence_logits(frame_tokens, action_tokens)
        row = logits[:, step * (N + A) + N - 1 + k]  # [B, V]
        action_tokens[:, step, k] = row.argmax(dim=-1)
        rows.append(row)
    return action_tokens[:, step], torch.stack(rows, dim=1)


@pytest.mark.parametrize("step", [0, 2, T - 1])
@torch.no_grad()
def test_one_pass_equals_reference_loop(policy, step):
    frame_tokens = _frame_tokens(held_frames=step + 1, seed=step)
    loop_tokens, loop_logits = _reference_loop(policy, frame_tokens, step)

    current = policy(frame_tokens, torch.tensor(step, dtype=torch.int64))
    every_step = policy.forward_all_steps(frame_tokens)[:, step]

    for logits in (current, every_step):
        assert logits.shape == (2, A, PRESET.num_action_bins)
        torch.testing.assert_close(logits, loop_logits, rtol=0.0, atol=1e-5)
        assert torch.equal(logits.argmax(dim=-1), loop_tokens)


@pytest.mark.parametrize("step", [0, 3])
@torch.no_grad()
def test_slots_after_current_step_do_not_matter(policy, step):
    frame_tokens = _frame_tokens(held_frames=step + 1, seed=10 + step)
    garbage = frame_tokens.clone()
    garbage[:, step + 1 :] = torch.randn_like(garbage[:, step + 1 :]) * 100.0
    current_step = torch.tensor(step, dtype=torch.int64)
    torch.testing.assert_close(
        policy(frame_tokens, current_step), policy(garbage, current_step), rtol=0.0, atol=1e-6
    )


@torch.no_grad()
def test_earlier_frames_do_matter(policy):
    frame_tokens = _frame_tokens(held_frames=T, seed=20)
    changed = frame_tokens.clone()
    changed[:, 0] += 1.0
    last = torch.tensor(T - 1, dtype=torch.int64)
    assert not torch.allclose(policy(frame_tokens, last), policy(changed, last))


@torch.no_grad()
def test_steps_past_the_window_read_the_last_step(policy):
    frame_tokens = _frame_tokens(held_frames=T, seed=30)
    torch.testing.assert_close(
        policy(frame_tokens, torch.tensor(T + 3, dtype=torch.int64)),
        policy(frame_tokens, torch.tensor(T - 1, dtype=torch.int64)),
    )


@torch.no_grad()
def test_film_zero_init_makes_trunk_ignore_the_embedding():
    torch.manual_seed(0)
    trunk = FilmEfficientNet(
        embedding_dim=PRESET.embedding_dim,
        width_multiplier=PRESET.backbone_width_multiplier,
        depth_multiplier=PRESET.backbone_depth_multiplier,
    ).eval()
    image = torch.randn(2, 3, PRESET.image_height_px, PRESET.image_width_px)
    first = trunk(image, torch.randn(2, PRESET.embedding_dim))
    second = trunk(image, torch.randn(2, PRESET.embedding_dim) * 10.0)
    assert torch.equal(first, second)


@torch.no_grad()
def test_rt1_encodes_each_frame_then_reads_every_step():
    model = RT1.from_preset(PRESET, seed=0).eval()
    images = torch.randint(0, 256, (1, T, PRESET.image_height_px, PRESET.image_width_px, 3))
    images = images.to(torch.uint8)
    embedding = torch.randn(1, PRESET.embedding_dim)

    logits = model(images, embedding)

    tokens = torch.stack([model.frame_encoder(images[:, t], embedding) for t in range(T)], dim=1)
    assert logits.shape == (1, T, A, PRESET.num_action_bins)
    torch.testing.assert_close(logits, model.policy.forward_all_steps(tokens))


def test_same_seed_builds_the_same_model():
    first = RT1.from_preset("rt1-tiny", seed=3).state_dict()
    second = RT1.from_preset("rt1-tiny", seed=3).state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)
