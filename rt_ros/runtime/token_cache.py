"""The frame-token cache: RT-1's 6-frame history, so each tick encodes only the newest frame."""

from __future__ import annotations

import math

import numpy as np

from rt_ros.runtime.errors import ConfigError, FrameError


class FrameTokenCache:
    """Holds the tokens of the last `history_length` frames with their stamps.

    RT-1's start of episode: frame t (t < history_length) is written at slot t and the action is
    read at step t; once the window is full it shifts left by one per frame. Slots after the
    current step hold zeros; the transformer's causal mask makes them irrelevant.
    """

    def __init__(
        self,
        history_length: int,
        tokens_per_frame: int,
        token_dim: int,
        max_gap_s: float = math.inf,
    ) -> None:
        for field, value in (
            ("history_length", history_length),
            ("tokens_per_frame", tokens_per_frame),
            ("token_dim", token_dim),
        ):
            if value < 1:
                raise ConfigError(f"{field} must be >= 1, got {value}")
        if not max_gap_s > 0:
            raise ConfigError(f"max_gap_s must be > 0, got {max_gap_s}")
        self.history_length = history_length
        self.max_gap_s = max_gap_s
        self._tokens = np.zeros((1, history_length, tokens_per_frame, token_dim), np.float32)
        self._stamps_s: list[float] = []
        self.history_drops = 0  # times a gap longer than max_gap_s dropped the history

    def __len__(self) -> int:
        return len(self._stamps_s)

    @property
    def stamps_s(self) -> tuple[float, ...]:
        """Stamps of the held frames, oldest first."""
        return tuple(self._stamps_s)

    @property
    def newest_stamp_s(self) -> float | None:
        return self._stamps_s[-1] if self._stamps_s else None

    @property
    def current_step(self) -> int:
        """Slot of the newest frame: where the transformer reads the action."""
        if not self._stamps_s:
            raise FrameError("the token cache is empty: append a frame first")
        return len(self._stamps_s) - 1

    def reset(self) -> None:
        """Forget all frames (new instruction, new episode)."""
        self._tokens.fill(0.0)
        self._stamps_s.clear()

    def append(self, frame_tokens: np.ndarray, stamp_s: float) -> None:
        """Add the tokens of a new frame; stamps must increase.

        A gap longer than `max_gap_s` since the newest frame drops the history first: tokens from
        before the gap no longer describe the scene the robot acts in.
        """
        expected = self._tokens.shape[2:]
        tokens = np.asarray(frame_tokens, dtype=np.float32).reshape(-1, *expected[1:])
        if tokens.shape != expected:
            raise FrameError(f"frame tokens must have shape {expected}, got {frame_tokens.shape}")
        if not math.isfinite(stamp_s):
            raise FrameError(f"frame stamp must be finite, got {stamp_s}")
        newest = self.newest_stamp_s
        if newest is not None:
            if stamp_s <= newest:
                raise FrameError(
                    f"frame stamp {stamp_s:.6f} s is not newer than the newest cached "
                    f"frame ({newest:.6f} s)"
                )
            if stamp_s - newest > self.max_gap_s:
                self.reset()
                self.history_drops += 1
        if len(self._stamps_s) == self.history_length:
            # Shift the window left by one; numpy handles the overlapping copy.
            self._tokens[0, :-1] = self._tokens[0, 1:]
            self._stamps_s.pop(0)
        self._tokens[0, len(self._stamps_s)] = tokens
        self._stamps_s.append(stamp_s)

    def window(self) -> np.ndarray:
        """The policy graph's [1, history, tokens_per_frame, token_dim] input (a view)."""
        return self._tokens
