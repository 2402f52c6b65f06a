"""The wire format of rt_ros's policy-server API, shared by the server and the remote policy.

POST /v1/step: the query names the instruction, the frame's encoding (jpeg, png, or raw rgb8 with
its height and width) and how many earlier frames' tokens follow; the body is the frame's bytes,
then those tokens as little-endian float16 [frames, tokens_per_frame, token_dim]. The answer is
JSON: the new frame's tokens (base64 float16, to append to the client's window) and the action.
No web framework here: the robot's side needs only this and an HTTP client.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from rt_ros.runtime.errors import TokenWindowError

STEP_PATH = "/v1/step"
INFO_PATH = "/v1/info"
ACT_PATH = "/act"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
FRAME_ENCODINGS = ("jpeg", "png", "rgb8")
# Tokens travel as float16: 2 KiB per rt1-tiny frame instead of 4; the transformer reads float32.
TOKEN_DTYPE = np.dtype("<f2")
STEP_CONTENT_TYPE = "application/octet-stream"


def history_to_bytes(history: np.ndarray) -> bytes:
    """Earlier frames' tokens [frames, tokens_per_frame, token_dim] -> the body's tail."""
    return np.ascontiguousarray(history, dtype=TOKEN_DTYPE).tobytes()


def history_bytes(frames: int, token_shape: tuple[int, int]) -> int:
    """Length of the token part of a step body."""
    return frames * token_shape[0] * token_shape[1] * TOKEN_DTYPE.itemsize


def history_from_bytes(data: bytes, frames: int, token_shape: tuple[int, int]) -> np.ndarray:
    """The body's token part -> float16 [frames, tokens_per_frame, token_dim]."""
    expected = history_bytes(frames, token_shape)
    if len(data) != expected:
        raise TokenWindowError(
            f"history: {frames} frames of {token_shape[0]}x{token_shape[1]} float16 tokens take "
            f"{expected} bytes, got {len(data)}"
        )
    return np.frombuffer(data, dtype=TOKEN_DTYPE).reshape(frames, *token_shape)


def tokens_to_text(tokens: np.ndarray) -> str:
    """One frame's tokens -> base64 of their little-endian float16 bytes (JSON-safe)."""
    return base64.b64encode(np.ascontiguousarray(tokens, dtype=TOKEN_DTYPE).tobytes()).decode()


def tokens_from_text(text: str, token_shape: tuple[int, int]) -> np.ndarray:
    """Inverse of `tokens_to_text`; TokenWindowError when the size or values are wrong."""
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as error:
        raise TokenWindowError(f"frame_tokens: not base64: {error}") from error
    tokens = history_from_bytes(data, 1, token_shape)[0]
    if not np.isfinite(tokens).all():
        raise TokenWindowError("frame_tokens: tokens must be finite (NaN or infinity found)")
    return tokens


def step_query(
    instruction: str, frame_encoding: str, history_frames: int, frame_shape: tuple[int, int] | None
) -> dict[str, Any]:
    """The query parameters of one step; `frame_shape` (height, width) for raw rgb8 only."""
    query: dict[str, Any] = {
        "instruction": instruction,
        "frame_encoding": frame_encoding,
        "history_frames": history_frames,
    }
    if frame_shape is not None:
        query["frame_height"], query["frame_width"] = frame_shape
    return query
