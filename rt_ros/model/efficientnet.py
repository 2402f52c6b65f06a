"""EfficientNet trunk with a FiLM layer after every MBConv block (RT-1's FiLM-EfficientNet).

Weights start random: no ImageNet checkpoint is available offline (no torchvision or timm), so
unlike the paper this trunk is not pretrained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from rt_ros.model.film import FiLM


@dataclass(frozen=True)
class StageSpec:
    """One stage of identical MBConv blocks; the first block applies the stride."""

    expand_ratio: int
    kernel_size: int
    stride: int
    in_channels: int
    out_channels: int
    repeats: int


# EfficientNet-B0 (Tan & Le 2019, table 1); larger variants scale channels and repeats.
B0_STAGES = (
    # StageSpec(expand_ratio, kernel_size, stride, in_channels, out_channels, repeats)
    StageSpec(1, 3, 1, 32, 16, 1),
    StageSpec(6, 3, 2, 16, 24, 2),
    StageSpec(6, 5, 2, 24, 40, 2),
    StageSpec(6, 3, 2, 40, 80, 3),
    StageSpec(6, 5, 1, 80, 112, 3),
    StageSpec(6, 5, 2, 112, 192, 4),
    StageSpec(6, 3, 1, 192, 320, 1),
)
B0_STEM_CHANNELS = 32
B0_HEAD_CHANNELS = 1280
CHANNEL_DIVISOR = 8
# Squeeze-excitation width as a fraction of the block's input channels.
SE_RATIO = 0.25
# Keras BatchNormalization defaults used by EfficientNet (momentum 0.99 = torch momentum 0.01).
BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def round_channels(channels: int, width_multiplier: float) -> int:
    """Scale a channel count and round to a multiple of 8, never more than 10% down."""
    scaled = channels * width_multiplier
    nearest = int(scaled + CHANNEL_DIVISOR / 2) // CHANNEL_DIVISOR * CHANNEL_DIVISOR
    rounded = max(CHANNEL_DIVISOR, nearest)
    if rounded < 0.9 * scaled:
        rounded += CHANNEL_DIVISOR
    return rounded


def round_repeats(repeats: int, depth_multiplier: float) -> int:
    """Scale a stage's block count, rounding up."""
    return math.ceil(depth_multiplier * repeats)


FULL_OUTPUT_STRIDE = 32


def scaled_stages(
    width_multiplier: float, depth_multiplier: float, output_stride: int = FULL_OUTPUT_STRIDE
) -> list[StageSpec]:
    """The B0 stage table scaled by EfficientNet's compound width and depth multipliers.

    An output stride of 16 drops the last stride-2 stage's stride (its blocks then run at the
    previous stage's resolution); 32 is the published network.
    """
    if output_stride not in (FULL_OUTPUT_STRIDE, FULL_OUTPUT_STRIDE // 2):
        raise ValueError(f"output_stride must be 32 or 16, got {output_stride!r}")
    last_strided = max(i for i, stage in enumerate(B0_STAGES) if stage.stride == 2)
    return [
        StageSpec(
            expand_ratio=stage.expand_ratio,
            kernel_size=stage.kernel_size,
            stride=1
            if output_stride != FULL_OUTPUT_STRIDE and i == last_strided
            else stage.stride,
            in_channels=round_channels(stage.in_channels, width_multiplier),
            out_channels=round_channels(stage.out_channels, width_multiplier),
            repeats=round_repeats(stage.repeats, depth_multiplier),
        )
        for i, stage in enumerate(B0_STAGES)
    ]


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 1,
    stride: int = 1,
    groups: int = 1,
    activation: bool = True,
) -> nn.Sequential:
    """Bias-free conv, BatchNorm and (optionally) SiLU; 'same'-style symmetric padding."""
    layers: list[nn.Module] = [
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM),
    ]
    if activation:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel gates from globally pooled features: reduce (SiLU), expand (sigmoid), scale."""

    def __init__(self, channels: int, squeezed_channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed_channels, 1)
        self.expand = nn.Conv2d(squeezed_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W] -> [B, C, H, W]."""
        gates = x.mean(dim=(2, 3), keepdim=True)  # [B, C, 1, 1]
        gates = torch.sigmoid(self.expand(nn.functional.silu(self.reduce(gates))))
        return x * gates


class MBConv(nn.Module):
    """Inverted residual block: expand 1x1, depthwise kxk, squeeze-excitation, project 1x1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expand_ratio: int,
        kernel_size: int,
        stride: int,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        hidden_channels = in_channels * expand_ratio
        self.expand = (
            conv_bn_act(in_channels, hidden_channels) if expand_ratio != 1 else nn.Identity()
        )
        self.depthwise = conv_bn_act(
            hidden_channels, hidden_channels, kernel_size, stride, groups=hidden_channels
        )
        squeezed = max(1, int(in_channels * SE_RATIO))
        self.squeeze_excitation = SqueezeExcitation(hidden_channels, squeezed)
        self.project = conv_bn_act(hidden_channels, out_channels, activation=False)
        self.has_residual = stride == 1 and in_channels == out_channels
        self.drop_path_rate = drop_path_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C_in, H, W] -> [B, C_out, H / stride, W / stride]."""
        y = self.project(self.squeeze_excitation(self.depthwise(self.expand(x))))
        if not self.has_residual:
            return y
        if self.training and self.drop_path_rate > 0.0:
            # Stochastic depth: drop the whole residual branch per sample.
            keep = 1.0 - self.drop_path_rate
            mask = torch.rand(y.shape[0], 1, 1, 1, device=y.device, dtype=y.dtype) < keep
            y = y * mask / keep
        return x + y


class FilmEfficientNet(nn.Module):
    """Stem, MBConv blocks each followed by FiLM on the instruction embedding, 1x1 head conv."""

    def __init__(
        self,
        embedding_dim: int,
        width_multiplier: float,
        depth_multiplier: float,
        stochastic_depth_rate: float = 0.0,
        output_stride: int = FULL_OUTPUT_STRIDE,
    ) -> None:
        super().__init__()
        stages = scaled_stages(width_multiplier, depth_multiplier, output_stride)
        stem_channels = round_channels(B0_STEM_CHANNELS, width_multiplier)
        self.stem = conv_bn_act(3, stem_channels, kernel_size=3, stride=2)

        num_blocks = sum(stage.repeats for stage in stages)
        blocks: list[MBConv] = []
        films: list[FiLM] = []
        for stage in stages:
            for repeat in range(stage.repeats):
                blocks.append(
                    MBConv(
                        in_channels=stage.in_channels if repeat == 0 else stage.out_channels,
                        out_channels=stage.out_channels,
                        expand_ratio=stage.expand_ratio,
                        kernel_size=stage.kernel_size,
                        stride=stage.stride if repeat == 0 else 1,
                        drop_path_rate=stochastic_depth_rate * len(blocks) / num_blocks,
                    )
                )
                films.append(FiLM(embedding_dim, stage.out_channels))
        self.blocks = nn.ModuleList(blocks)
        self.films = nn.ModuleList(films)

        self.out_channels = round_channels(B0_HEAD_CHANNELS, width_multiplier)
        self.head = conv_bn_act(stages[-1].out_channels, self.out_channels)
        self._init_weights()

    def _init_weights(self) -> None:
        # He init on fan-out per group, as EfficientNet does (a depthwise kernel's fan-out is
        # k*k, not C*k*k as torch's kaiming init would count); FiLM keeps its zero init.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                kernel_area = module.kernel_size[0] * module.kernel_size[1]
                fan_out = module.out_channels // module.groups * kernel_area
                nn.init.normal_(module.weight, std=math.sqrt(2.0 / fan_out))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, image: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """image [B, 3, H, W] normalised, embedding [B, E] -> features [B, C, ~H/s, ~W/s].

        s is the output stride, 32 or 16.
        """
        x = self.stem(image)
        for block, film in zip(self.blocks, self.films, strict=True):
            x = film(block(x), embedding)
        return self.head(x)
