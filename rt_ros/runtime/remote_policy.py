"""A policy answered by a server over HTTP, with the local Policy's interface and a deadline.

`RemotePolicy.reset(instruction)` then `step(frame, stamp_s)` per tick, as `Policy`. Kinds:
- `rt_ros`: rt_ros's own server (`rt-ros serve`). The client keeps the window of frame tokens
  (as `FrameTokenCache` would) and sends it with each new frame; the server answers the new
  frame's tokens and the action, so any replica can answer any step.
- `openvla`: OpenVLA's `POST /act` (image + instruction -> 7 floats), mapped to the robot by an
  action-space profile (default openvla_7d).
- `rt2_text`: the same request, answered with RT-2 action text {"text": "..."} decoded by the
  strict text codec.
A step that has no answer within `deadline_s` raises RemotePolicyError (the node publishes a
stop); its late answer is dropped, never used. While a request is still out, the next step does
not send another: it raises at once. A connection that failed is opened again on the next step.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import cv2
import httpx
import numpy as np

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_codec import ActionTokenCodec
from rt_ros.runtime.action_space import ActionSpace, load_action_space
from rt_ros.runtime.errors import (
    ActionDecodeError,
    ConfigError,
    FrameError,
    InstructionError,
    RemotePolicyError,
    RtRosError,
    TokenWindowError,
)
from rt_ros.runtime.frame_preprocess import resize_frame
from rt_ros.runtime.openvla_protocol import ArrayFieldError, array_from_json, array_to_json
from rt_ros.runtime.policy import StepTimings
from rt_ros.runtime.rt2_text_codec import Rt2TextCodec
from rt_ros.runtime.step_protocol import (
    ACT_PATH,
    INFO_PATH,
    STEP_CONTENT_TYPE,
    STEP_PATH,
    history_to_bytes,
    step_query,
    tokens_from_text,
)

REMOTE_KINDS = ("rt_ros", "openvla", "rt2_text")
# The profile each kind's answers are read with unless the robot names another.
DEFAULT_ACTION_SPACES = {
    "rt_ros": "rt1_everyday_robots",
    "openvla": "openvla_7d",
    "rt2_text": "rt2_text",
}
FRAME_ENCODINGS = ("jpeg", "rgb8")
# httpx logs every request at INFO: at the control rate that is a log line per tick.
logging.getLogger("httpx").setLevel(logging.WARNING)
# The 7 numbers of an OpenVLA answer; larger arrays are refused unread.
_MAX_ACTION_VALUES = 64


@dataclass(frozen=True)
class RemoteConfig:
    """Where the policy runs and how long a step may take; validated once."""

    url: str
    kind: str = "rt_ros"
    deadline_s: float = 0.15
    token: str = ""  # bearer token of the server; empty: none sent
    frame_encoding: str = "jpeg"  # rt_ros kind: jpeg (compact) or rgb8 (exact)
    jpeg_quality: int = 90
    # openvla / rt2_text: the frame is resized to this (height, width) before it is sent.
    image_size_px: tuple[int, int] = (224, 224)
    max_history_gap_s: float = math.inf
    # A request the deadline left behind is abandoned after this, or after the deadline if that
    # is longer (its answer is dropped anyway).
    abandon_after_s: float = 5.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"remote.url must be an http(s) URL, got {self.url!r}")
        if self.kind not in REMOTE_KINDS:
            raise ConfigError(
                f"remote.kind must be one of {', '.join(REMOTE_KINDS)}, got {self.kind!r}"
            )
        if not (math.isfinite(self.deadline_s) and self.deadline_s > 0):
            raise ConfigError(
                f"remote.deadline_s must be a finite number > 0, got {self.deadline_s}"
            )
        if self.frame_encoding not in FRAME_ENCODINGS:
            raise ConfigError(
                f"remote.frame_encoding must be one of {', '.join(FRAME_ENCODINGS)}, got "
                f"{self.frame_encoding!r}"
            )
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"remote.jpeg_quality must be 1..100, got {self.jpeg_quality}")
        if len(self.image_size_px) != 2 or min(self.image_size_px) < 1:
            raise ConfigError(
                f"remote.image_size_px must be (height, width) >= 1, got {self.image_size_px}"
            )
        if not self.max_history_gap_s > 0:
            raise ConfigError(f"max_history_gap_s must be > 0, got {self.max_history_gap_s}")
        if not self.abandon_after_s > 0:
            raise ConfigError(f"remote.abandon_after_s must be > 0, got {self.abandon_after_s}")


@dataclass(frozen=True)
class _Answer:
    action: Action
    frame_tokens: np.ndarray | None  # rt_ros kind: the new frame's tokens for the window
    server_ms: float | None  # as the server reports it
    round_trip_ms: float
    preprocess_ms: float


class RemotePolicy:
    """Steps answered by a policy server; same interface as `Policy` (reset, step, instruction,
    action_space, last_timings)."""

    def __init__(
        self,
        config: RemoteConfig,
        action_space: ActionSpace | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.config = config
        self.action_space = action_space or load_action_space(DEFAULT_ACTION_SPACES[config.kind])
        if config.kind == "rt2_text":
            self._text_codec = Rt2TextCodec(self.action_space)
        else:
            self._codec = ActionTokenCodec(self.action_space)
        headers = {"authorization": f"Bearer {config.token}"} if config.token else {}
        self._client = client or httpx.Client(
            base_url=config.url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(max(config.abandon_after_s, config.deadline_s)),
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rt-ros-remote")
        self._in_flight: Future | None = None
        self._lock = threading.Lock()
        self._info: dict[str, Any] | None = None
        self._window: deque[tuple[float, np.ndarray]] = deque()
        self._history_length: int | None = None
        self.instruction: str | None = None
        self._last_action: Action | None = None
        self._newest_stamp_s: float | None = None
        self.last_timings = StepTimings()
        self.last_network_ms = math.nan
        self.connected = False
        self.counts = dict.fromkeys(
            ("requests", "answers", "deadline_misses", "busy", "failures", "reconnects"), 0
        )
        self.last_error = ""

    # --- the Policy interface ---------------------------------------------------------------

    @property
    def image_size_px(self) -> tuple[int, int]:
        """(height, width) the frames are sent at."""
        if self.config.kind == "rt_ros" and self._info is not None:
            return self._info["image_height_px"], self._info["image_width_px"]
        return self.config.image_size_px

    def reset(self, instruction: str) -> None:
        """Start an episode: the instruction is sent with every step; the window empties."""
        if not isinstance(instruction, str) or not instruction.strip():
            raise InstructionError(f"instruction must be a non-empty string, got {instruction!r}")
        self.instruction = instruction.strip()
        self._window.clear()
        self._last_action = None
        self._newest_stamp_s = None

    def step(self, rgb_frame: np.ndarray, stamp_s: float) -> Action:
        """The action for the newest frame, or RemotePolicyError when none came in time."""
        if self.instruction is None:
            raise InstructionError("no instruction: call reset(instruction) before step()")
        if self._last_action is not None and stamp_s == self._newest_stamp_s:
            self.last_timings = StepTimings()
            return self._last_action
        if not math.isfinite(stamp_s):
            raise FrameError(f"frame stamp must be finite, got {stamp_s}")
        if self._newest_stamp_s is not None and stamp_s < self._newest_stamp_s:
            raise FrameError(
                f"frame stamp {stamp_s:.6f} s is older than the newest "
                f"{self._newest_stamp_s:.6f} s"
            )
        if self._in_flight is not None and not self._in_flight.done():
            self._count("busy")
            raise RemotePolicyError(
                "the previous request is still out (the server is slower than the deadline)"
            )
        self._drop_stale_history(stamp_s)
        history = [tokens for _, tokens in self._window]
        self._in_flight = self._executor.submit(
            self._exchange, np.asarray(rgb_frame), self.instruction, history
        )
        self._count("requests")
        try:
            answer = self._in_flight.result(timeout=self.config.deadline_s)
        except FutureTimeout:
            self._count("deadline_misses")
            raise RemotePolicyError(
                f"no answer from {self.config.url} within the deadline of "
                f"{self.config.deadline_s * 1e3:.0f} ms"
            ) from None
        self._count("answers")
        if answer.frame_tokens is not None:
            self._window.append((stamp_s, answer.frame_tokens))
            while self._history_length is not None and len(self._window) >= self._history_length:
                self._window.popleft()
        self._newest_stamp_s = stamp_s
        self._last_action = answer.action
        server_ms = answer.server_ms if answer.server_ms is not None else 0.0
        self.last_network_ms = max(answer.round_trip_ms - server_ms, 0.0)
        self.last_timings = StepTimings(
            preprocess_ms=answer.preprocess_ms, transformer_ms=server_ms
        )
        return answer.action

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def describe(self) -> dict[str, str]:
        """Where the policy runs and how its requests went, for /diagnostics."""
        with self._lock:
            counts = dict(self.counts)
        return {
            "inference": "remote",
            "remote_url": self.config.url,
            "remote_kind": self.config.kind,
            "remote_connected": str(self.connected).lower(),
            "remote_deadline_ms": f"{self.config.deadline_s * 1e3:g}",
            "remote_last_error": self.last_error,
            **{f"remote_{name}": str(value) for name, value in counts.items()},
        }

    # --- the worker thread ------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def _drop_stale_history(self, stamp_s: float) -> None:
        if self._window and stamp_s - self._window[-1][0] > self.config.max_history_gap_s:
            self._window.clear()

    def _exchange(self, rgb: np.ndarray, instruction: str, history: list[np.ndarray]) -> _Answer:
        """One request and its answer (on the worker thread); errors say what went wrong."""
        try:
            answer = (
                self._exchange_rt_ros(rgb, instruction, history)
                if self.config.kind == "rt_ros"
                else self._exchange_act(rgb, instruction)
            )
        except httpx.HTTPError as error:
            self._fail(f"{type(error).__name__}: {error}")
            self._info = None  # whoever answers next may run another model: ask again
            raise RemotePolicyError(f"{self.config.url} unreachable: {error}") from error
        except RtRosError as error:
            self._fail(str(error))
            raise
        if not self.connected and self.counts["failures"]:
            self._count("reconnects")  # answered again after failures
        self.connected, self.last_error = True, ""
        return answer

    def _fail(self, message: str) -> None:
        self._count("failures")
        self.connected, self.last_error = False, message[:200]

    def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self._client.post(path, **kwargs)
        if response.status_code != 200:
            raise RemotePolicyError(
                f"{self.config.url}{path} answered {response.status_code}: {response.text[:300]}"
            )
        return response

    def _load_info(self) -> dict[str, Any]:
        if self._info is None:
            response = self._client.get(INFO_PATH)
            if response.status_code != 200:
                raise RemotePolicyError(f"{INFO_PATH} answered {response.status_code}")
            try:
                info = response.json()
                served = ActionSpace.from_dict(info["action_space"], source=self.config.url)
                self._history_length = int(info["history_length"])
                for key in ("image_height_px", "image_width_px", "tokens_per_frame", "token_dim"):
                    int(info[key])
            except (ValueError, KeyError, TypeError) as error:
                raise RemotePolicyError(f"{INFO_PATH}: unreadable answer: {error!r}") from error
            own = self.action_space
            if (len(served.dimensions), served.num_bins) != (len(own.dimensions), own.num_bins):
                raise RemotePolicyError(
                    f"action_space: the server's {served.name} has {len(served.dimensions)} "
                    f"dimensions x {served.num_bins} bins, the robot's profile {own.name} "
                    f"{len(own.dimensions)} x {own.num_bins}"
                )
            self._info = info
        return self._info

    def _exchange_rt_ros(
        self, rgb: np.ndarray, instruction: str, history: list[np.ndarray]
    ) -> _Answer:
        started_s = time.perf_counter()
        info = self._load_info()
        image = resize_frame(rgb, info["image_height_px"], info["image_width_px"])[0]
        if self.config.frame_encoding == "jpeg":
            ok, encoded = cv2.imencode(
                ".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality]
            )
            if not ok:
                raise FrameError("the frame did not encode as JPEG")
            frame_bytes, shape = encoded.tobytes(), None
        else:
            frame_bytes, shape = image.tobytes(), image.shape[:2]
        most = self._history_length - 1
        tokens = (
            np.stack(history[-most:])
            if history
            else np.zeros((0, info["tokens_per_frame"], info["token_dim"]), np.float16)
        )
        body = frame_bytes + history_to_bytes(tokens)
        encoded_s = time.perf_counter()
        response = self._post(
            STEP_PATH,
            params=step_query(instruction, self.config.frame_encoding, len(tokens), shape),
            content=body,
            headers={"content-type": STEP_CONTENT_TYPE},
        )
        answered_s = time.perf_counter()
        try:
            data = response.json()
            frame_tokens = tokens_from_text(
                data["frame_tokens"], (info["tokens_per_frame"], info["token_dim"])
            )
            action = self._codec.decode_tokens(np.asarray(data["action"]["tokens"], np.int64))
            server_ms = float(data["server_ms"])
        except (ValueError, KeyError, TypeError, TokenWindowError) as error:
            raise RemotePolicyError(f"{STEP_PATH}: unreadable answer: {error}") from error
        return _Answer(
            action,
            frame_tokens,
            server_ms,
            (answered_s - encoded_s) * 1e3,
            (encoded_s - started_s) * 1e3,
        )

    def _exchange_act(self, rgb: np.ndarray, instruction: str) -> _Answer:
        started_s = time.perf_counter()
        image = resize_frame(rgb, *self.config.image_size_px)[0]
        payload = {"image": array_to_json(image), "instruction": instruction}
        encoded_s = time.perf_counter()
        response = self._post(ACT_PATH, json=payload)
        answered_s = time.perf_counter()
        try:
            data = response.json()
        except ValueError as error:
            raise RemotePolicyError(f"{ACT_PATH}: answer is not JSON: {error}") from error
        if self.config.kind == "rt2_text":
            text = data.get("text") if isinstance(data, dict) else data
            action = self._text_codec.decode(text)
        else:
            action = self._openvla_action(data)
        return _Answer(
            action, None, None, (answered_s - encoded_s) * 1e3, (encoded_s - started_s) * 1e3
        )

    def _openvla_action(self, data: Any) -> Action:
        space = self.action_space
        try:
            values = array_from_json(data, "action", _MAX_ACTION_VALUES).astype(np.float64)
        except ArrayFieldError as error:
            raise ActionDecodeError(f"{space.name}: {error}") from error
        if values.shape != (len(space),):
            raise ActionDecodeError(
                f"{space.name}: expected {len(space)} values ({' '.join(space.names)}), got "
                f"shape {values.shape}"
            )
        if not np.isfinite(values).all():
            raise ActionDecodeError(f"{space.name}: action values must be finite, got {values}")
        low = np.array([dim.low for dim in space.dimensions])
        high = np.array([dim.high for dim in space.dimensions])
        clipped = np.clip(values, low, high)
        tokens = self._codec.values_to_tokens(clipped, rounding="nearest")
        labels = {
            dim.name: dim.label_for(int(tokens[d]))
            for d, dim in enumerate(space.dimensions)
            if dim.is_discrete
        }
        values_by_name = dict(zip(space.names, clipped.tolist(), strict=True))
        return Action.from_space(space, values_by_name, tuple(tokens.tolist()), labels)
