"""RT-1 over a batch of chunks: every frame encoded once, windows gathered from the tokens.

Also RT-1's loss: cross-entropy over the bins of every action token of every (unpadded) step of
every window, as the reference trains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rt_ros.model.rt1 import RT1

IGNORE = -100


class WindowedRT1(nn.Module):
    """frames + their embeddings + window layout -> logits of every step of every window."""

    def __init__(self, model: RT1) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, frames: torch.Tensor, frame_embedding: torch.Tensor, window_frames: torch.Tensor
    ) -> torch.Tensor:
        """frames uint8 [F, H, W, 3], frame_embedding [F, E], window_frames int64 [W, T] (rows
        of frames; F means padding) -> logits [W, T, A, V]."""
        tokens = self.model.frame_encoder(frames, frame_embedding)  # [F, N, D]
        padded = torch.cat([tokens, tokens.new_zeros(1, *tokens.shape[1:])])  # [F + 1, N, D]
        windows = padded[window_frames]  # [W, T, N, D]
        return self.model.policy.forward_all_steps(windows)


@dataclass
class TokenStats:
    """Summed loss and correct tokens per action dimension over scored steps."""

    loss_sum: float = 0.0
    steps: int = 0
    correct: torch.Tensor | None = None  # [A]

    def add(self, loss_sum: float, steps: int, correct: torch.Tensor) -> None:
        self.loss_sum += loss_sum
        self.steps += steps
        self.correct = correct if self.correct is None else self.correct + correct

    @property
    def loss(self) -> float:
        """Mean cross-entropy per action token."""
        dims = 1 if self.correct is None else len(self.correct)
        return self.loss_sum / max(1, self.steps * dims)

    @property
    def accuracy_per_dim(self) -> list[float]:
        if self.correct is None or self.steps == 0:
            return []
        return (self.correct.double() / self.steps).tolist()

    @property
    def accuracy(self) -> float:
        per_dim = self.accuracy_per_dim
        return sum(per_dim) / len(per_dim) if per_dim else 0.0


def window_loss(
    logits: torch.Tensor, targets: torch.Tensor, step_weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, int, torch.Tensor]:
    """logits [W, T, A, V], targets int64 [W, T, A] (IGNORE on padded steps) -> (mean loss,
    scored steps, correct tokens per dimension [A]).

    `step_weights` [W, T]: each step's tokens count that much in the mean (keyframe weighting);
    None: every token alike, RT-1's loss."""
    vocab = logits.shape[-1]
    flat = logits.float().reshape(-1, vocab)
    if step_weights is None:
        loss = F.cross_entropy(flat, targets.reshape(-1), ignore_index=IGNORE)
    else:
        per_token = F.cross_entropy(
            flat, targets.reshape(-1), ignore_index=IGNORE, reduction="none"
        )
        weights = (step_weights.unsqueeze(-1) * (targets != IGNORE)).reshape(-1)
        loss = (per_token * weights).sum() / weights.sum().clamp_min(1e-12)
    with torch.no_grad():
        scored = targets[..., 0] != IGNORE  # [W, T]
        hits = (logits.argmax(-1) == targets) & scored.unsqueeze(-1)  # [W, T, A]
        correct = hits.sum(dim=(0, 1))
    return loss, int(scored.sum()), correct
