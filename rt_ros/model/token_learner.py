"""TokenLearner (Ryoo et al. 2021): a few learned spatial attention maps pool a feature map."""

from __future__ import annotations

import torch
from torch import nn

# The reference uses LayerNorm epsilon 1e-6 throughout.
LAYER_NORM_EPS = 1e-6


class TokenLearner(nn.Module):
    """Pool [B, C, H, W] features to [B, num_tokens, C] with softmax attention over positions."""

    def __init__(self, channels: int, num_tokens: int, bottleneck_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=LAYER_NORM_EPS)
        # The reference's MLP uses the tanh approximation of GELU.
        self.attention_mlp = nn.Sequential(
            nn.Linear(channels, bottleneck_dim),
            nn.GELU(approximate="tanh"),
            nn.Linear(bottleneck_dim, num_tokens),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, C, H, W] -> tokens [B, num_tokens, C]."""
        positions = features.flatten(2).transpose(1, 2)  # [B, H*W, C]
        maps = self.attention_mlp(self.norm(positions))  # [B, H*W, num_tokens]
        weights = maps.transpose(1, 2).softmax(dim=-1)  # [B, num_tokens, H*W]
        # Weighted sums of the un-normalised features, as in the reference.
        return weights @ positions  # [B, num_tokens, C]
