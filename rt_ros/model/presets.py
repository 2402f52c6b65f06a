"""RT-1 model sizes: a validated, frozen preset per named configuration (`rt1`, `rt1-tiny`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from rt_ros.runtime.errors import ConfigError

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)

# Five stride-2 stages (stem + 4 MBConv stages) divide each side by 32.
MIN_IMAGE_SIDE_PX = 32
# Total backbone strides on offer: all five stride-2 stages, or all but the last.
OUTPUT_STRIDES = (32, 16)


@dataclass(frozen=True)
class ModelPreset:
    """Every size of an RT-1 model: frame encoder, token learner, transformer and action head."""

    name: str
    image_height_px: int
    image_width_px: int
    # Per-channel RGB normalisation applied inside the frame encoder after scaling to [0, 1].
    image_mean: tuple[float, float, float] = IMAGENET_MEAN_RGB
    image_std: tuple[float, float, float] = IMAGENET_STD_RGB
    # Instruction embedding width: 384 = all-MiniLM-L6-v2 (offline default), 512 = the paper's USE.
    embedding_dim: int = 384
    # EfficientNet compound scaling of the B0 block table (B3: width 1.2, depth 1.4).
    backbone_width_multiplier: float = 1.2
    backbone_depth_multiplier: float = 1.4
    # 32: EfficientNet as published (a 300 px frame gives a 10x10 feature map). 16: the last
    # stride-2 stage keeps its resolution, doubling the map's side for finer object positions.
    backbone_output_stride: int = 32
    # Per-block drop rate grows linearly to this value; 0 switches stochastic depth off.
    stochastic_depth_rate: float = 0.0
    token_dim: int = 512
    tokens_per_frame: int = 8
    token_learner_bottleneck_dim: int = 64
    history_length: int = 6
    num_layers: int = 8
    num_heads: int = 8
    # Key/query/value size per head (the reference's `layer_size`), independent of the width.
    head_dim: int = 128
    # The reference's only feed-forward is one Dense of this size added to the residual stream,
    # so it is also the transformer width (tokens are projected to it on entry).
    feed_forward_dim: int = 512
    dropout: float = 0.1
    num_action_dims: int = 11
    num_action_bins: int = 256

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"ModelPreset: name must be a non-empty string, got {self.name!r}")
        for field in ("image_height_px", "image_width_px"):
            value = getattr(self, field)
            self._require_int(field, value)
            if value < MIN_IMAGE_SIDE_PX:
                raise ConfigError(
                    f"ModelPreset {self.name!r}: {field} must be at least {MIN_IMAGE_SIDE_PX}, "
                    f"got {value}"
                )
        for field in (
            "embedding_dim",
            "token_dim",
            "tokens_per_frame",
            "token_learner_bottleneck_dim",
            "history_length",
            "num_layers",
            "num_heads",
            "head_dim",
            "feed_forward_dim",
            "num_action_dims",
        ):
            self._require_int(field, getattr(self, field))
        self._require_int("num_action_bins", self.num_action_bins, minimum=2)
        if self.backbone_output_stride not in OUTPUT_STRIDES or isinstance(
            self.backbone_output_stride, bool
        ):
            raise ConfigError(
                f"ModelPreset {self.name!r}: backbone_output_stride must be one of "
                f"{OUTPUT_STRIDES}, got {self.backbone_output_stride!r}"
            )
        for field in ("backbone_width_multiplier", "backbone_depth_multiplier"):
            value = getattr(self, field)
            if not _is_real(value) or not math.isfinite(value) or value <= 0:
                raise ConfigError(
                    f"ModelPreset {self.name!r}: {field} must be a positive number, got {value!r}"
                )
        for field in ("dropout", "stochastic_depth_rate"):
            value = getattr(self, field)
            if not _is_real(value) or not 0.0 <= value < 1.0:
                raise ConfigError(
                    f"ModelPreset {self.name!r}: {field} must be in [0, 1), got {value!r}"
                )
        for field in ("image_mean", "image_std"):
            value = getattr(self, field)
            if (
                not isinstance(value, (tuple, list))
                or len(value) != 3
                or not all(_is_real(v) and math.isfinite(v) for v in value)
            ):
                raise ConfigError(
                    f"ModelPreset {self.name!r}: {field} must be 3 finite RGB values, "
                    f"got {value!r}"
                )
            # Lists (from YAML or JSON) become tuples so the preset stays hashable.
            object.__setattr__(self, field, tuple(float(v) for v in value))
        if any(v <= 0 for v in self.image_std):
            raise ConfigError(
                f"ModelPreset {self.name!r}: image_std must be positive, got {self.image_std!r}"
            )

    def _require_int(self, field: str, value: object, minimum: int = 1) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(
                f"ModelPreset {self.name!r}: {field} must be an int >= {minimum}, got {value!r}"
            )

    @property
    def model_dim(self) -> int:
        """Transformer residual width; equal to `feed_forward_dim` as in the reference."""
        return self.feed_forward_dim

    @property
    def tokens_per_step(self) -> int:
        """Sequence positions per time step: image tokens then action tokens."""
        return self.tokens_per_frame + self.num_action_dims

    @property
    def sequence_length(self) -> int:
        """Transformer sequence length over the whole history window (RT-1: 6 x 19 = 114)."""
        return self.history_length * self.tokens_per_step

    def replace(self, **changes: object) -> ModelPreset:
        """Return a copy with some fields changed; the copy is validated again."""
        return dataclasses.replace(self, **changes)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


PRESETS: dict[str, ModelPreset] = {
    # The paper's size: EfficientNet-B3 (26 MBConv blocks) at 300x300, 8 layers of width 512.
    "rt1": ModelPreset(name="rt1", image_height_px=300, image_width_px=300),
    # About 1.7M parameters for CPU tests and quick training; same sequence and action layout.
    "rt1-tiny": ModelPreset(
        name="rt1-tiny",
        image_height_px=128,
        image_width_px=128,
        backbone_width_multiplier=0.5,
        backbone_depth_multiplier=0.5,
        token_dim=128,
        token_learner_bottleneck_dim=32,
        num_layers=4,
        num_heads=4,
        head_dim=32,
        feed_forward_dim=128,
    ),
}
# rt1-tiny with an 8x8 instead of a 4x4 feature map (output stride 16): the same weights' shapes,
# about 1.2x the encoder's cost, for tasks that need object positions to centimetres.
PRESETS["rt1-tiny-os16"] = PRESETS["rt1-tiny"].replace(
    name="rt1-tiny-os16", backbone_output_stride=16
)


def get_preset(name: str) -> ModelPreset:
    """Look up a preset by name; raises ConfigError listing the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ConfigError(f"unknown model preset {name!r}; known presets: {known}") from None
