"""Frame encoder: raw uint8 NHWC frames + an instruction embedding -> tokens_per_frame tokens."""

import pytest
import torch

from rt_ros.model.frame_encoder import FrameEncoder
from rt_ros.model.presets import get_preset
from rt_ros.runtime.errors import FrameError


def _frames(preset, batch: int) -> torch.Tensor:
    shape = (batch, preset.image_height_px, preset.image_width_px, 3)
    return torch.randint(0, 256, shape, dtype=torch.uint8)


def _relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    # Fresh BatchNorm statistics shrink untrained activations a lot, so compare relatively.
    return ((a - b).abs().max() / a.abs().max()).item()


@pytest.fixture(scope="module")
def tiny_encoder():
    torch.manual_seed(0)
    return FrameEncoder(get_preset("rt1-tiny")).eval()


def test_tiny_encoder_turns_uint8_frames_into_tokens(tiny_encoder):
    preset = tiny_encoder.preset
    with torch.no_grad():
        tokens = tiny_encoder(_frames(preset, 3), torch.randn(3, preset.embedding_dim))
    assert tokens.shape == (3, preset.tokens_per_frame, preset.token_dim)
    assert tokens.dtype == torch.float32
    assert torch.isfinite(tokens).all()


def test_encoder_normalises_inside(tiny_encoder):
    preset = tiny_encoder.preset
    frames = _frames(preset, 2)
    embedding = torch.randn(2, preset.embedding_dim)
    with torch.no_grad():
        tokens = tiny_encoder(frames, embedding)
        # Same pixels with the channel order reversed must give different tokens (RGB matters).
        swapped = tiny_encoder(frames.flip(-1).contiguous(), embedding)
    assert _relative_difference(tokens, swapped) > 1e-3


@pytest.mark.parametrize(
    "frame",
    [
        torch.zeros(1, 128, 128, 3),  # float, not uint8
        torch.zeros(1, 3, 128, 128, dtype=torch.uint8),  # NCHW
        torch.zeros(1, 64, 64, 3, dtype=torch.uint8),  # wrong size
    ],
)
def test_encoder_rejects_frames_it_was_not_built_for(tiny_encoder, frame):
    with pytest.raises(FrameError):
        tiny_encoder(frame, torch.zeros(1, tiny_encoder.preset.embedding_dim))


def test_trained_film_makes_tokens_depend_on_the_instruction(tiny_encoder):
    encoder = FrameEncoder(tiny_encoder.preset).eval()
    torch.nn.init.normal_(encoder.trunk.films[0].gamma.weight, std=0.5)
    frames = _frames(encoder.preset, 1)
    with torch.no_grad():
        first = encoder(frames, torch.randn(1, encoder.preset.embedding_dim))
        second = encoder(frames, torch.randn(1, encoder.preset.embedding_dim))
    assert _relative_difference(first, second) > 1e-3


@pytest.mark.slow
def test_rt1_encoder_output_shape():
    preset = get_preset("rt1")
    encoder = FrameEncoder(preset).eval()
    with torch.no_grad():
        tokens = encoder(_frames(preset, 1), torch.randn(1, preset.embedding_dim))
    assert tokens.shape == (1, 8, 512)
