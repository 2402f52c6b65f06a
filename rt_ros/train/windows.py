"""Training windows built from frames encoded once: chunks of consecutive frames per episode.

RT-1 trains on windows of `history` consecutive frames with the loss on every step. Consecutive
windows of an episode share all but one frame, so a batch is made of chunks: runs of
consecutive frames of one episode, each frame encoded once, and every window inside a chunk
gathered from those tokens. A chunk of `windows + history - 1` frames gives `windows` windows
(naive batching encodes `history` frames per window). An episode shorter than the history gives
one window, padded after its last frame: causal attention keeps the padding out of every step
that is scored, and padded steps carry no loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rt_ros.train.training_store import EpisodeRecord


@dataclass(frozen=True)
class Chunk:
    """Consecutive ticks [start, start + length) of one episode (store-wide frame indices)."""

    episode: int  # index into the list of episodes the chunks were made from
    start: int
    length: int
    instruction: int


def plan_chunks(
    episodes: Sequence[EpisodeRecord], history: int, windows_per_chunk: int
) -> list[Chunk]:
    """Chunks that cover every window of every episode exactly once."""
    if windows_per_chunk < 1:
        raise ValueError(f"windows_per_chunk ({windows_per_chunk!r}) must be >= 1")
    chunks = []
    for index, episode in enumerate(episodes):
        starts = max(1, episode.length - history + 1)  # window start positions in the episode
        for first in range(0, starts, windows_per_chunk):
            count = min(windows_per_chunk, starts - first)
            length = min(count + history - 1, episode.length - first)
            chunks.append(Chunk(index, episode.start + first, length, episode.instruction))
    return chunks


@dataclass(frozen=True)
class WindowBatch:
    """Index arrays that turn the encoded frames of a batch of chunks into windows.

    `frame_rows` [F]: store rows of the frames to encode (each once), chunk after chunk.
    `frame_chunk` [F]: which chunk each frame belongs to (for per-chunk augmentation).
    `window_frames` [W, T]: rows into the encoded frames (F = padding) for every window step.
    `window_targets` [W, T]: store rows of the tick whose tokens each step predicts (-1: padding).
    `window_instruction` [W]: the instruction row of each window.
    """

    frame_rows: np.ndarray
    frame_chunk: np.ndarray
    window_frames: np.ndarray
    window_targets: np.ndarray
    window_instruction: np.ndarray
    frame_instruction: np.ndarray

    @property
    def num_windows(self) -> int:
        return len(self.window_frames)


def batch_windows(chunks: Sequence[Chunk], history: int) -> WindowBatch:
    """The window layout of a batch of chunks."""
    frame_rows, frame_chunk, frame_instruction = [], [], []
    window_frames, window_targets, window_instruction = [], [], []
    offset = 0
    for number, chunk in enumerate(chunks):
        frame_rows.extend(range(chunk.start, chunk.start + chunk.length))
        frame_chunk.extend([number] * chunk.length)
        frame_instruction.extend([chunk.instruction] * chunk.length)
        for first in range(max(1, chunk.length - history + 1)):
            steps = np.arange(first, first + history)
            valid = steps < chunk.length
            window_frames.append(np.where(valid, offset + steps, -1))
            window_targets.append(np.where(valid, chunk.start + steps, -1))
            window_instruction.append(chunk.instruction)
        offset += chunk.length
    frames = np.array(window_frames, dtype=np.int64)
    frames[frames < 0] = offset  # the padding row appended after the encoded frames
    return WindowBatch(
        frame_rows=np.array(frame_rows, dtype=np.int64),
        frame_chunk=np.array(frame_chunk, dtype=np.int64),
        window_frames=frames,
        window_targets=np.array(window_targets, dtype=np.int64),
        window_instruction=np.array(window_instruction, dtype=np.int64),
        frame_instruction=np.array(frame_instruction, dtype=np.int64),
    )
