"""RT-1's policy head: the history of frame tokens -> logits of the 11 action tokens per step."""

from __future__ import annotations

import torch
from torch import nn

from rt_ros.model.attention_mask import build_attention_mask, readout_positions
from rt_ros.model.presets import ModelPreset
from rt_ros.model.transformer import DecoderTransformer


class PolicyTransformer(nn.Module):
    """Interleaves [frame tokens, action tokens] per step and reads action logits in one pass."""

    def __init__(self, preset: ModelPreset) -> None:
        super().__init__()
        self.preset = preset
        self.transformer = DecoderTransformer(
            input_dim=preset.token_dim,
            model_dim=preset.model_dim,
            sequence_length=preset.sequence_length,
            num_layers=preset.num_layers,
            num_heads=preset.num_heads,
            head_dim=preset.head_dim,
            dropout=preset.dropout,
            vocab_size=preset.num_action_bins,
        )
        sizes = (preset.history_length, preset.tokens_per_frame, preset.num_action_dims)
        self.register_buffer("attention_mask", build_attention_mask(*sizes), persistent=False)
        self.register_buffer("readout_positions", readout_positions(*sizes), persistent=False)

    def sequence_logits(
        self, frame_tokens: torch.Tensor, action_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """frame_tokens [B, T, N, D], action_tokens int64 [B, T, A] or None -> [B, T*(N+A), V]."""
        return self.transformer(self._sequence(frame_tokens, action_tokens), self.attention_mask)

    def _sequence(
        self, frame_tokens: torch.Tensor, action_tokens: torch.Tensor | None
    ) -> torch.Tensor:
        """The transformer's input [B, T*(N+A), D]: per step, frame tokens then action inputs."""
        preset = self.preset
        expected = (preset.history_length, preset.tokens_per_frame, preset.token_dim)
        if frame_tokens.dim() != 4 or tuple(frame_tokens.shape[1:]) != expected:
            raise ValueError(
                f"frame_tokens must be [B, {', '.join(map(str, expected))}], "
                f"got {list(frame_tokens.shape)}"
            )
        batch, steps = frame_tokens.shape[:2]
        if action_tokens is not None and tuple(action_tokens.shape) != (
            batch,
            steps,
            preset.num_action_dims,
        ):
            raise ValueError(
                f"action_tokens must be [B, {steps}, {preset.num_action_dims}], "
                f"got {list(action_tokens.shape)}"
            )
        # Action inputs enter as zero vectors, as in the reference (b/260260205), whatever
        # action_tokens holds: it is accepted only so the reference's 11-pass autoregressive loop
        # can be replayed. With zero inputs and action rows masked from one another, that loop
        # gives exactly the logits of one pass.
        actions = frame_tokens.new_zeros(batch, steps, preset.num_action_dims, preset.token_dim)
        return torch.cat([frame_tokens, actions], dim=2).flatten(1, 2)  # [B, T*(N+A), D]

    def forward_all_steps(self, frame_tokens: torch.Tensor) -> torch.Tensor:
        """frame_tokens [B, T, N, D] -> action logits of every step [B, T, A, V] (training)."""
        return self.sequence_logits(frame_tokens)[:, self.readout_positions]

    def forward(self, frame_tokens: torch.Tensor, current_step: torch.Tensor) -> torch.Tensor:
        """frame_tokens [B, T, N, D], current_step int64 [] -> action logits [B, A, V].

        While fewer than T frames are held, frame t sits in slot t and its action is read at step
        t; later slots are ignored by causality. Steps past the window read the last step. The
        last layer computes only the A rows read out (exactly those rows of sequence_logits).
        """
        step = current_step.clamp(0, self.preset.history_length - 1)
        # A gather on the step tensor, so one exported graph serves every step.
        positions = self.readout_positions[step]  # [A]
        sequence = self._sequence(frame_tokens, None)
        return self.transformer(sequence, self.attention_mask, positions)  # [B, A, V]
