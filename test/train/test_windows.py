"""Window sharing: chunks cover every window once, and encoding each frame once gives exactly the
loss of encoding every window's frames separately (RT-1's naive batching)."""

from __future__ import annotations

import numpy as np
import torch

from rt_ros.model.rt1 import RT1
from rt_ros.train.augment import AugmentConfig, augment_chunks
from rt_ros.train.training_store import EpisodeRecord
from rt_ros.train.windowed_model import IGNORE, WindowedRT1, window_loss
from rt_ros.train.windows import batch_windows, plan_chunks

HISTORY = 6


def _episodes(lengths: list[int]) -> list[EpisodeRecord]:
    episodes, start = [], 0
    for index, length in enumerate(lengths):
        episodes.append(EpisodeRecord(f"e{index}", start, length, index, "train", True, "expert"))
        start += length
    return episodes


def _windows_of(chunks) -> list[tuple[int, ...]]:
    """Every window as the tuple of store rows it scores (padding dropped)."""
    layout = batch_windows(chunks, HISTORY)
    return [tuple(int(r) for r in row if r >= 0) for row in layout.window_targets]


def test_chunks_cover_every_window_of_every_episode_once():
    episodes = _episodes([25, 6, 3, 14])
    for per_chunk in (1, 4, 8, 30):
        chunks = plan_chunks(episodes, HISTORY, per_chunk)
        got = sorted(_windows_of(chunks))
        expected = []
        for episode in episodes:
            if episode.length < HISTORY:
                expected.append(tuple(range(episode.start, episode.start + episode.length)))
            for first in range(episode.length - HISTORY + 1):
                expected.append(tuple(range(episode.start + first, episode.start + first + 6)))
        assert got == sorted(expected), per_chunk
        assert all(chunk.length <= per_chunk + HISTORY - 1 for chunk in chunks)


def test_each_frame_is_encoded_once_per_chunk():
    chunks = plan_chunks(_episodes([25]), HISTORY, 8)
    assert [(c.start, c.length) for c in chunks] == [(0, 13), (8, 13), (16, 9)]
    layout = batch_windows(chunks[:2], HISTORY)
    for chunk in range(2):
        rows = layout.frame_rows[layout.frame_chunk == chunk].tolist()
        assert len(rows) == len(set(rows)) == 13
    assert layout.num_windows == 16  # 16 windows from 26 encoded frames; naive batching: 96


def test_short_episode_window_is_padded_and_its_padding_is_not_scored():
    layout = batch_windows(plan_chunks(_episodes([3]), HISTORY, 8), HISTORY)
    assert layout.window_targets.tolist() == [[0, 1, 2, -1, -1, -1]]
    assert layout.window_frames.tolist() == [[0, 1, 2, 3, 3, 3]]  # row 3: the padding token


def test_shared_windows_give_the_loss_of_encoding_every_window_separately():
    torch.manual_seed(0)
    model = RT1.from_preset("rt1-tiny", seed=0).eval()
    preset = model.preset
    rng = np.random.default_rng(0)
    episodes = _episodes([11, 4])
    frames = rng.integers(0, 256, (15, preset.image_height_px, preset.image_width_px, 3))
    frames = torch.from_numpy(frames.astype(np.uint8))
    tokens = torch.from_numpy(rng.integers(0, 256, (15, 11)))
    embeddings = torch.nn.functional.normalize(torch.randn(2, preset.embedding_dim), dim=1)
    layout = batch_windows(plan_chunks(episodes, HISTORY, 8), HISTORY)

    def targets_of(rows: np.ndarray) -> torch.Tensor:
        out = tokens[np.maximum(rows, 0)].clone()
        out[torch.from_numpy(rows < 0)] = IGNORE
        return out

    with torch.no_grad():
        shared_logits = WindowedRT1(model)(
            frames[layout.frame_rows],
            embeddings[layout.frame_instruction],
            torch.from_numpy(layout.window_frames),
        )
        shared, steps, _ = window_loss(shared_logits, targets_of(layout.window_targets))
        # Naive: every window's frames encoded on their own, padding as zero tokens.
        naive_logits = []
        for rows, instruction in zip(
            layout.window_targets, layout.window_instruction, strict=True
        ):
            valid = rows[rows >= 0]
            encoded = model.frame_encoder(
                frames[valid], embeddings[instruction].expand(len(valid), -1)
            )
            window = torch.zeros(HISTORY, *encoded.shape[1:])
            window[: len(valid)] = encoded
            naive_logits.append(model.policy.forward_all_steps(window[None])[0])
        naive, naive_steps, _ = window_loss(
            torch.stack(naive_logits), targets_of(layout.window_targets)
        )
    assert steps == naive_steps == 6 * 6 + 4
    torch.testing.assert_close(shared, naive, rtol=1e-5, atol=1e-5)


def test_augmentation_is_one_draw_per_chunk():
    frames = torch.from_numpy(
        np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    )
    chunk_of = torch.tensor([0, 0, 0, 1, 1, 1])
    out = augment_chunks(frames, chunk_of, AugmentConfig(), torch.Generator().manual_seed(1))
    assert out.dtype == torch.uint8
    assert out.shape == frames.shape
    assert not torch.equal(out, frames)
    # Identical frames in one chunk stay identical; the other chunk gets other parameters.
    same = frames[:1].expand(6, -1, -1, -1).clone()
    out = augment_chunks(same, chunk_of, AugmentConfig(), torch.Generator().manual_seed(2))
    assert torch.equal(out[0], out[2])
    assert torch.equal(out[3], out[5])
    assert not torch.equal(out[0], out[3])
