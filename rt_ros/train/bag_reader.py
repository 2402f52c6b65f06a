"""Episodes out of rosbag2 MCAP recordings: a frame and the action tokens of every control tick.

A recording is one `.mcap` file or a rosbag2 folder (`metadata.yaml` + its `.mcap` files, as
`ros2 bag record -s mcap` writes them); `find_recordings` walks folders for both. A topic map
(rt_ros.train.topic_map) says which topic is what. Each instruction message starts an episode.

Actions come from the map's tokens topic when the recording has it (`rt-ros collect` writes
one token message per tick with the frame it was computed from): each tick pairs the tokens with
the newest frame at or before them. Otherwise they come from commanded velocities: ticks every
`control_period_s` from the episode's first frame, each command held until the next (or until
`command_timeout_s`), integrated over the tick into RT-1's displacement and rotation increment,
and tokenized with the profile (RT-1's own float32 tokenizer, floor).

Refused with a BagError naming the recording and what is wrong: a required topic that is not in
it, an episode without frames, tokens whose profile or width differ from the training profile.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from rt_ros.runtime.action_codec import ActionTokenCodec
from rt_ros.runtime.action_motion import (
    ARM_ANGULAR_ROLES,
    ARM_LINEAR_ROLES,
    BASE_ROLES,
    rotation_vector_to_rpy,
)
from rt_ros.runtime.action_space import ActionSpace
from rt_ros.runtime.errors import ActionDecodeError, FrameError, RtRosError
from rt_ros.runtime.image_messages import compressed_msg_to_rgb, image_msg_to_rgb
from rt_ros.train.topic_map import TopicMap

COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"


class BagError(RtRosError):
    """A recording cannot give training episodes; the message names it and the reason."""


@dataclass
class Episode:
    """One instruction's ticks: the frame each action was computed from and its tokens."""

    source: str
    instruction: str
    frames: list[np.ndarray]  # [T] of HxWx3 uint8 RGB
    tokens: np.ndarray  # int64 [T, A] in the profile's order
    info: dict[str, Any] = field(default_factory=dict)
    success: bool | None = None

    def __len__(self) -> int:
        return len(self.frames)


def find_recordings(paths: list[Path]) -> list[Path]:
    """Every recording under `paths`: .mcap files and rosbag2 folders, sorted, none twice."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.exists():
            raise BagError(f"{path}: no such file or folder")
        if path.is_file():
            if path.suffix != ".mcap":
                raise BagError(f"{path}: not an .mcap file")
            found.append(path)
        elif (path / "metadata.yaml").is_file():
            found.append(path)
        else:
            for child in sorted(path.iterdir()):
                if child.is_dir() or child.suffix == ".mcap":
                    found.extend(find_recordings([child]))
    return sorted(dict.fromkeys(found))


def _mcap_files(recording: Path) -> list[Path]:
    """The .mcap files of a recording in recording order."""
    if recording.is_file():
        return [recording]
    try:
        metadata = yaml.safe_load((recording / "metadata.yaml").read_text(encoding="utf-8"))
        listed = metadata["rosbag2_bagfile_information"]["relative_file_paths"]
        files = [recording / name for name in listed]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        files = sorted(recording.glob("*.mcap"))
    files = [path for path in files if path.suffix == ".mcap" and path.is_file()]
    if not files:
        raise BagError(f"{recording}: a rosbag2 folder without .mcap files (use `-s mcap`)")
    return files


@dataclass
class _Stream:
    """Messages of the mapped topics, in log-time order, and the topics the recording has."""

    topics: set[str] = field(default_factory=set)
    schemas: dict[str, str] = field(default_factory=dict)
    messages: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)


def _read(recording: Path, wanted: set[str]) -> _Stream:
    stream = _Stream()
    for path in _mcap_files(recording):
        try:
            with open(path, "rb") as file:
                reader = make_reader(file, decoder_factories=[DecoderFactory()])
                summary = reader.get_summary()
                if summary is not None:
                    for channel in summary.channels.values():
                        stream.topics.add(channel.topic)
                        schema = summary.schemas.get(channel.schema_id)
                        if schema is not None:
                            stream.schemas[channel.topic] = schema.name
                topics = sorted(wanted & stream.topics)
                for _, channel, message, decoded in reader.iter_decoded_messages(
                    topics=topics, log_time_order=True
                ):
                    stream.messages.setdefault(channel.topic, []).append(
                        (message.log_time, decoded)
                    )
        except (OSError, ValueError, KeyError, EOFError) as error:
            raise BagError(f"{path}: cannot read it as MCAP: {error}") from error
    return stream


class BagReader:
    """Turns recordings into Episodes for one action-space profile and topic map."""

    def __init__(self, topic_map: TopicMap, space: ActionSpace) -> None:
        self.topic_map = topic_map
        self.space = space
        self.codec = ActionTokenCodec(space)
        mode = space.mode_dimension
        self._mode_values = dict(zip(mode.labels, mode.values, strict=True)) if mode else {}

    def episodes(self, recording: Path) -> Iterator[Episode]:
        """Every episode of a recording; BagError for a recording that cannot give any."""
        recording = Path(recording)
        tmap = self.topic_map
        wanted = {tmap.image_topic, tmap.instruction_topic, tmap.info_topic, tmap.success_topic}
        wanted |= {tmap.action_tokens_topic, *tmap.command_topics}
        stream = _read(recording, {topic for topic in wanted if topic})
        for topic, role in ((tmap.image_topic, "image"), (tmap.instruction_topic, "instruction")):
            if topic not in stream.topics:
                raise BagError(
                    f"{recording}: no {role} topic {topic!r} (topics: {sorted(stream.topics)})"
                )
        use_tokens = bool(tmap.action_tokens_topic) and tmap.action_tokens_topic in stream.topics
        if not use_tokens:
            motion = [t for t in (tmap.arm_command_topic, tmap.base_command_topic) if t]
            if not any(topic in stream.topics for topic in motion):
                needed = [t for t in (tmap.action_tokens_topic, *motion) if t]
                raise BagError(
                    f"{recording}: none of the action topics {needed} is recorded "
                    f"(topics: {sorted(stream.topics)})"
                )
        info = self._info(recording, stream)
        successes = stream.messages.get(tmap.success_topic, [])
        success = bool(successes[-1][1].data) if successes else None
        instructions = stream.messages.get(tmap.instruction_topic, [])
        if not instructions:
            raise BagError(f"{recording}: no message on the instruction topic")
        images = stream.messages.get(tmap.image_topic, [])
        if not images:
            raise BagError(f"{recording}: no frames on {tmap.image_topic!r}")
        bounds = [t for t, _ in instructions[1:]] + [np.iinfo(np.int64).max]
        for index, ((start, text), end) in enumerate(zip(instructions, bounds, strict=True)):
            source = str(recording) if len(instructions) == 1 else f"{recording}#{index}"
            frames = [(t, msg) for t, msg in images if start <= t < end]
            if not frames:
                raise BagError(f"{source}: the episode {text.data!r} has no frames")
            if use_tokens:
                ticks = self._token_ticks(source, stream, frames, start, end)
            else:
                ticks = self._command_ticks(source, stream, frames, start, end)
            if not ticks:
                raise BagError(f"{source}: the episode {text.data!r} has no action with a frame")
            schema = stream.schemas.get(tmap.image_topic, "")
            decoded = [self._frame(source, msg, schema) for msg, _ in ticks]
            yield Episode(
                source=source,
                instruction=text.data,
                frames=decoded,
                tokens=np.stack([tokens for _, tokens in ticks]),
                info=info,
                success=success,
            )

    def _info(self, recording: Path, stream: _Stream) -> dict[str, Any]:
        messages = stream.messages.get(self.topic_map.info_topic, [])
        if not messages:
            return {}
        try:
            info = json.loads(messages[-1][1].data)
        except (json.JSONDecodeError, TypeError) as error:
            raise BagError(f"{recording}: episode info is not JSON: {error}") from None
        recorded = info.get("action_space")
        if recorded is not None and recorded != self.space.name:
            raise BagError(
                f"{recording}: recorded in action space {recorded!r}, but training uses "
                f"{self.space.name!r}"
            )
        return info

    @staticmethod
    def _frame(source: str, msg: Any, schema: str) -> np.ndarray:
        try:
            if schema == COMPRESSED_IMAGE:
                return compressed_msg_to_rgb(msg)
            return np.array(image_msg_to_rgb(msg))
        except FrameError as error:
            raise BagError(f"{source}: bad frame: {error}") from None

    def _token_ticks(
        self, source: str, stream: _Stream, frames: list, start: int, end: int
    ) -> list[tuple[Any, np.ndarray]]:
        """(frame message, tokens) for every token message of the episode that has a frame."""
        space = self.space
        ticks = []
        times = np.array([t for t, _ in frames])
        for time_ns, msg in stream.messages.get(self.topic_map.action_tokens_topic, []):
            if not start <= time_ns < end:
                continue
            labels = [dim.label for dim in msg.layout.dim]
            if labels and labels[0] and labels[0] != space.name:
                raise BagError(
                    f"{source}: action tokens are in action space {labels[0]!r}, but training "
                    f"uses {space.name!r}"
                )
            tokens = np.asarray(msg.data, dtype=np.int64)
            if tokens.shape != (len(space),):
                raise BagError(
                    f"{source}: action tokens have {tokens.size} values, but {space.name} has "
                    f"{len(space)} dimensions"
                )
            try:
                self.codec.tokens_to_values(tokens)
            except ActionDecodeError as error:
                raise BagError(f"{source}: {error}") from None
            newest = int(np.searchsorted(times, time_ns, side="right")) - 1
            if newest >= 0:
                ticks.append((frames[newest][1], tokens))
        return ticks

    def _command_ticks(
        self, source: str, stream: _Stream, frames: list, start: int, end: int
    ) -> list[tuple[Any, np.ndarray]]:
        """Ticks every control period from the first frame, the commands integrated over each."""
        tmap = self.topic_map
        period_ns = round(tmap.control_period_s * 1e9)
        timeout_ns = round(tmap.command_timeout_s * 1e9)

        def series(topic: str) -> list[tuple[int, Any]]:
            return [(t, m) for t, m in stream.messages.get(topic, []) if start <= t < end]

        arm = [(t, _twist(m, stream.schemas.get(tmap.arm_command_topic))) for t, m in series(
            tmap.arm_command_topic
        )]  # fmt: skip
        base = [(t, _twist(m, stream.schemas.get(tmap.base_command_topic))) for t, m in series(
            tmap.base_command_topic
        )]  # fmt: skip
        gripper = [(t, float(m.data)) for t, m in series(tmap.gripper_command_topic)]
        modes = [(t, str(m.data)) for t, m in series(tmap.mode_topic)]
        last_ns = max(t for t, _ in [*frames, *arm, *base, *gripper, *modes])
        times = np.array([t for t, _ in frames])
        ticks = []
        tick_ns = frames[0][0]
        while tick_ns + period_ns <= last_ns:
            newest = int(np.searchsorted(times, tick_ns, side="right")) - 1
            arm_step = _integrate(arm, tick_ns, period_ns, timeout_ns)
            base_step = _integrate(base, tick_ns, period_ns, timeout_ns)
            closedness = _latest(gripper, tick_ns + period_ns, default=-1.0)
            mode = _latest(modes, tick_ns + period_ns, default=None)
            if mode is None:
                moving_base = np.abs(base_step[[0, 1, 5]]).max() > 0
                mode = "base" if moving_base and not np.abs(arm_step).max() > 0 else "arm"
            ticks.append([frames[newest][1], arm_step, base_step, closedness, mode])
            tick_ns += period_ns
        if ticks and tmap.terminate_at_end:
            ticks[-1][4] = "terminate"
        try:
            return [(frame, self._tokens(*rest)) for frame, *rest in ticks]
        except (ActionDecodeError, KeyError) as error:
            raise BagError(f"{source}: cannot tokenize its commands: {error}") from None

    def _tokens(
        self, arm: np.ndarray, base: np.ndarray, closedness: float, mode: str
    ) -> np.ndarray:
        """Per-tick displacements -> tokens of the profile, by role (RT-1's floor)."""
        space = self.space
        angular = arm[3:]
        if space.rotation == "rpy_delta":
            angular = rotation_vector_to_rpy(angular)
        by_role = dict(zip(ARM_LINEAR_ROLES, arm[:3], strict=True))
        by_role |= dict(zip(ARM_ANGULAR_ROLES, angular, strict=True))
        by_role |= dict(zip(BASE_ROLES, base[[0, 1, 5]], strict=True))
        by_role["gripper"] = space.gripper_close_sign * closedness
        values = {}
        for dim in space.dimensions:
            if dim.is_discrete:
                if mode not in self._mode_values:
                    raise KeyError(f"mode {mode!r} is not one of {list(self._mode_values)}")
                values[dim.name] = float(self._mode_values[mode])
            else:
                values[dim.name] = float(by_role[dim.role])
        return self.codec.encode(values)


def _twist(msg: Any, schema: str | None) -> np.ndarray:
    """[vx, vy, vz, wx, wy, wz] of a Twist or TwistStamped."""
    twist = msg.twist if schema == TWIST_STAMPED else msg
    linear, angular = twist.linear, twist.angular
    return np.array([linear.x, linear.y, linear.z, angular.x, angular.y, angular.z])


def _latest(series: list[tuple[int, Any]], time_ns: int, default: Any) -> Any:
    """The value of the newest message at or before `time_ns`."""
    value = default
    for t, item in series:
        if t > time_ns:
            break
        value = item
    return value


def _integrate(
    series: list[tuple[int, np.ndarray]], start_ns: int, period_ns: int, timeout_ns: int
) -> np.ndarray:
    """Integral over [start, start + period] of velocities held from each message until the
    next one or until `timeout_ns` after it (then zero): a displacement and rotation vector."""
    total = np.zeros(6)
    end_ns = start_ns + period_ns
    for index, (t, velocity) in enumerate(series):
        until = series[index + 1][0] if index + 1 < len(series) else end_ns
        until = min(until, t + timeout_ns, end_ns)
        overlap = until - max(t, start_ns)
        if overlap > 0:
            total += velocity * (overlap * 1e-9)
    return total
