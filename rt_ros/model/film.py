"""FiLM: per-channel affine conditioning of a feature map on the instruction embedding."""

from __future__ import annotations

import torch
from torch import nn


class FiLM(nn.Module):
    """`x * (1 + gamma(e)) + beta(e)` per channel; gamma and beta start at zero (identity)."""

    def __init__(self, embedding_dim: int, num_channels: int) -> None:
        super().__init__()
        self.gamma = nn.Linear(embedding_dim, num_channels)
        self.beta = nn.Linear(embedding_dim, num_channels)
        # Zero init (RT-1): the conditioned trunk starts as the unconditioned one.
        for layer in (self.gamma, self.beta):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """features [B, C, H, W], embedding [B, E] -> [B, C, H, W]."""
        gamma = self.gamma(embedding)[:, :, None, None]  # [B, C, 1, 1]
        beta = self.beta(embedding)[:, :, None, None]  # [B, C, 1, 1]
        return features * (1.0 + gamma) + beta
