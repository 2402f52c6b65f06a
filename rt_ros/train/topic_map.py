"""Topic maps: which topic of a recorded bag is the camera, the instruction and the actions.

YAML files under config/topic_maps/ (or any path); `rt_ros_collect` reads what `rt-ros collect`
writes, `robot_commands_example` shows a real robot's `ros2 bag record` of commanded velocities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from rt_ros.paths import config_dir
from rt_ros.runtime.errors import ConfigError

DEFAULT_TOPIC_MAP = "rt_ros_collect"


@dataclass(frozen=True)
class TopicMap:
    """Topic names (an empty string: not recorded) and how commands become per-tick actions."""

    name: str
    image_topic: str
    instruction_topic: str
    action_tokens_topic: str = ""
    arm_command_topic: str = ""
    base_command_topic: str = ""
    gripper_command_topic: str = ""
    mode_topic: str = ""
    info_topic: str = ""
    success_topic: str = ""
    control_period_s: float = 1.0 / 3.0
    command_timeout_s: float = 0.5
    terminate_at_end: bool = True

    def __post_init__(self) -> None:
        where = f"topic map {self.name!r}"
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "str" and not isinstance(value, str):
                raise ConfigError(f"{where}: {field.name} ({value!r}) must be a string")
        for name in ("image_topic", "instruction_topic"):
            if not getattr(self, name):
                raise ConfigError(f"{where}: {name} must name a topic")
        if not (self.action_tokens_topic or self.arm_command_topic or self.base_command_topic):
            raise ConfigError(
                f"{where}: needs action_tokens_topic or at least one of arm_command_topic, "
                "base_command_topic"
            )
        for name in ("control_period_s", "command_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}: {name} ({value!r}) must be a number")
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{where}: {name} ({value!r}) must be a finite number > 0")
        if not isinstance(self.terminate_at_end, bool):
            raise ConfigError(
                f"{where}: terminate_at_end ({self.terminate_at_end!r}) must be true or false"
            )

    @property
    def command_topics(self) -> tuple[str, ...]:
        """The command topics this map names."""
        return tuple(
            topic
            for topic in (
                self.arm_command_topic,
                self.base_command_topic,
                self.gripper_command_topic,
                self.mode_topic,
            )
            if topic
        )


def load_topic_map(name_or_path: str | Path = DEFAULT_TOPIC_MAP) -> TopicMap:
    """A topic map by bare name (config/topic_maps/<name>.yaml) or from a YAML file path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
    else:
        path = config_dir() / "topic_maps" / f"{text}.yaml"
    if not path.is_file():
        raise ConfigError(f"topic map {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"topic map {path}: cannot read it as YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"topic map {path}: expected a mapping")
    known = {field.name for field in fields(TopicMap)}
    unknown = sorted(str(key) for key in data if key not in known)
    if unknown:
        raise ConfigError(f"topic map {path}: unknown field(s) {unknown}")
    if "name" not in data or "image_topic" not in data or "instruction_topic" not in data:
        raise ConfigError(f"topic map {path}: needs name, image_topic and instruction_topic")
    return TopicMap(**data)
