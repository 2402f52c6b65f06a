"""Frame encoder: one raw uint8 RGB frame + instruction embedding -> `tokens_per_frame` tokens."""

from __future__ import annotations

import torch
from torch import nn

from rt_ros.model.efficientnet import FilmEfficientNet
from rt_ros.model.film import FiLM
from rt_ros.model.presets import ModelPreset
from rt_ros.model.token_learner import TokenLearner
from rt_ros.runtime.errors import FrameError

PIXEL_MAX = 255.0


class FrameEncoder(nn.Module):
    """Normalise, FiLM-EfficientNet, 1x1 conv to token_dim (+ FiLM), TokenLearner.

    Pixel conversion lives inside the module so the exported graph takes raw uint8 NHWC frames.
    """

    def __init__(self, preset: ModelPreset) -> None:
        super().__init__()
        self.preset = preset
        self.register_buffer(
            "image_mean", torch.tensor(preset.image_mean).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "image_std", torch.tensor(preset.image_std).view(1, 3, 1, 1), persistent=False
        )
        self.trunk = FilmEfficientNet(
            embedding_dim=preset.embedding_dim,
            width_multiplier=preset.backbone_width_multiplier,
            depth_multiplier=preset.backbone_depth_multiplier,
            stochastic_depth_rate=preset.stochastic_depth_rate,
            output_stride=preset.backbone_output_stride,
        )
        self.to_tokens = nn.Conv2d(self.trunk.out_channels, preset.token_dim, 1, bias=False)
        # The reference also conditions the 1x1 conv output with FiLM.
        self.token_film = FiLM(preset.embedding_dim, preset.token_dim)
        self.token_learner = TokenLearner(
            preset.token_dim, preset.tokens_per_frame, preset.token_learner_bottleneck_dim
        )

    def forward(self, image: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """image uint8 [B, H, W, 3] RGB, embedding float32 [B, E] -> float32 [B, N, token_dim]."""
        expected = (self.preset.image_height_px, self.preset.image_width_px, 3)
        if image.dtype != torch.uint8 or tuple(image.shape[1:]) != expected:
            raise FrameError(
                f"frame must be uint8 [B, {expected[0]}, {expected[1]}, 3] RGB, "
                f"got {image.dtype} {list(image.shape)}"
            )
        x = image.permute(0, 3, 1, 2).float() / PIXEL_MAX  # [B, 3, H, W] in [0, 1]
        x = (x - self.image_mean) / self.image_std
        features = self.trunk(x, embedding)  # [B, C_head, h, w]
        features = self.token_film(self.to_tokens(features), embedding)  # [B, token_dim, h, w]
        return self.token_learner(features)  # [B, N, token_dim]
