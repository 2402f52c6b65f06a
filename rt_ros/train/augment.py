"""Image augmentation for training, drawn once per chunk so a window sees one consistent camera.

A random shift (replicate-padded translation, the camera nudged by a few pixels) and colour
jitter (brightness, contrast, saturation) on uint8 RGB frames; the frame encoder normalises
inside the model, so frames stay uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the per-chunk random transforms (0 switches one off)."""

    max_shift_px: int = 6
    brightness: float = 0.10  # +- fraction of full scale
    contrast: float = 0.15  # factor in [1 - c, 1 + c]
    saturation: float = 0.15  # factor in [1 - s, 1 + s]

    def __post_init__(self) -> None:
        if not (isinstance(self.max_shift_px, int) and self.max_shift_px >= 0):
            raise ValueError(f"max_shift_px ({self.max_shift_px!r}) must be an int >= 0")
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} ({value!r}) must be in [0, 1)")


def augment_chunks(
    frames: torch.Tensor,
    frame_chunk: torch.Tensor,
    config: AugmentConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """frames uint8 [F, H, W, 3], frame_chunk int64 [F] (chunk of each frame) -> uint8 frames
    with one shift and one colour jitter per chunk."""
    chunks = int(frame_chunk.max()) + 1 if len(frame_chunk) else 0
    out = frames
    shift = config.max_shift_px
    if shift > 0:
        height, width = frames.shape[1:3]
        # [F, 3, H + 2s, W + 2s], edges repeated so a shift never shows a black border.
        padded = F.pad(frames.permute(0, 3, 1, 2).float(), (shift,) * 4, mode="replicate")
        offsets = torch.randint(0, 2 * shift + 1, (chunks, 2), generator=generator)
        shifted = torch.empty_like(frames)
        for chunk in range(chunks):
            rows = frame_chunk == chunk
            dy, dx = (int(v) for v in offsets[chunk])
            crop = padded[rows, :, dy : dy + height, dx : dx + width]
            shifted[rows] = crop.permute(0, 2, 3, 1).to(torch.uint8)
        out = shifted
    if config.brightness or config.contrast or config.saturation:
        x = out.float()  # [F, H, W, 3]
        uniform = torch.rand((chunks, 3), generator=generator) * 2 - 1  # [-1, 1]
        brightness = (uniform[:, 0] * config.brightness * 255.0)[frame_chunk].view(-1, 1, 1, 1)
        contrast = (1 + uniform[:, 1] * config.contrast)[frame_chunk].view(-1, 1, 1, 1)
        saturation = (1 + uniform[:, 2] * config.saturation)[frame_chunk].view(-1, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean
        gray = x.mean(dim=3, keepdim=True)
        x = (x - gray) * saturation + gray + brightness
        out = x.round().clamp(0, 255).to(torch.uint8)
    return out
