"""RT-1: the frame encoder and the policy transformer together, for training on whole windows."""

from __future__ import annotations

import torch
from torch import nn

from rt_ros.model.frame_encoder import FrameEncoder
from rt_ros.model.policy_transformer import PolicyTransformer
from rt_ros.model.presets import ModelPreset, get_preset


def count_parameters(module: nn.Module) -> int:
    """Number of parameter elements of a module (trainable or not)."""
    return sum(parameter.numel() for parameter in module.parameters())


class RT1(nn.Module):
    """Images of a history window + instruction embedding -> action logits of every step."""

    def __init__(self, preset: ModelPreset) -> None:
        super().__init__()
        self.preset = preset
        self.frame_encoder = FrameEncoder(preset)
        self.policy = PolicyTransformer(preset)

    @classmethod
    def from_preset(cls, name_or_preset: str | ModelPreset, seed: int | None = None) -> RT1:
        """Build from a preset name or object; a seed makes the random init reproducible."""
        preset = get_preset(name_or_preset) if isinstance(name_or_preset, str) else name_or_preset
        if seed is None:
            return cls(preset)
        # Seed a forked RNG so building a model leaves the caller's random state alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(preset)

    def forward(self, images: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """images uint8 [B, T, H, W, 3], embedding [B, E] -> logits [B, T, A, V]."""
        batch, steps = images.shape[:2]
        frames = images.flatten(0, 1)  # [B*T, H, W, 3]
        frame_embedding = embedding.repeat_interleave(steps, dim=0)  # [B*T, E]
        tokens = self.frame_encoder(frames, frame_embedding)  # [B*T, N, D]
        tokens = tokens.unflatten(0, (batch, steps))  # [B, T, N, D]
        return self.policy.forward_all_steps(tokens)
