"""ROS 2 messages into rosbag2-compatible MCAP files, without a ROS install.

Messages are plain dicts serialised as CDR by `mcap-ros2-support`; each topic's schema is the
ROS 2 message definition (`ros2msg`, dependencies appended after `MSG:` separators, as rosbag2
writes them), read from the `.msg` files that the ROS 2 packages install under `share/`. Files
written here open with `ros2 bag info|play <file>.mcap` and any MCAP/ROS 2 reader.
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

from mcap_ros2.writer import Writer

from rt_ros.runtime.errors import ConfigError

PRIMITIVES = frozenset(
    (
        "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
        "int32", "uint32", "int64", "uint64", "string", "wstring",
    )
)  # fmt: skip
SEPARATOR = "=" * 80
_ARRAY_OR_BOUND = re.compile(r"(\[.*\]|<=\d+)")


def _share_dirs() -> list[Path]:
    """Where ROS 2 packages keep their share/ folders: AMENT_PREFIX_PATH, then this Python's."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return [Path(prefix) / "share" for prefix in [*prefixes, sys.prefix]]


def _msg_file(type_name: str) -> Path:
    """The .msg file of `pkg/msg/Type` (or `pkg/Type`)."""
    parts = type_name.split("/")
    package, name = parts[0], parts[-1]
    for share in _share_dirs():
        path = share / package / "msg" / f"{name}.msg"
        if path.is_file():
            return path
    raise ConfigError(
        f"no message definition for {type_name} under {[str(s) for s in _share_dirs()]}: "
        "install the ROS 2 message packages (the ros extra) or source a ROS 2 install"
    )


def _dependencies(package: str, text: str) -> list[str]:
    """`pkg/Type` names of the non-primitive fields of a .msg text (constants skipped)."""
    found = []
    for raw in text.splitlines():
        tokens = raw.split("#", 1)[0].split()
        if len(tokens) < 2 or "=" in tokens[1] or (tokens[2:3] and tokens[2].startswith("=")):
            continue  # blank, or a constant (TYPE NAME=VALUE)
        field_type = _ARRAY_OR_BOUND.sub("", tokens[0])
        if field_type not in PRIMITIVES:
            found.append(field_type if "/" in field_type else f"{package}/{field_type}")
    return found


@cache
def message_definition(type_name: str) -> str:
    """The full ros2msg text of `pkg/msg/Type`: its .msg file, then each dependency once."""
    package = type_name.split("/")[0]
    main = _msg_file(type_name).read_text(encoding="utf-8")
    parts, seen = [main.rstrip("\n")], set()
    pending = _dependencies(package, main)
    while pending:
        dependency = pending.pop(0)
        if dependency in seen:
            continue
        seen.add(dependency)
        dep_package, dep_name = dependency.split("/")
        text = _msg_file(f"{dep_package}/msg/{dep_name}").read_text(encoding="utf-8")
        parts.append(f"{SEPARATOR}\nMSG: {dependency}\n{text.rstrip(chr(10))}")
        pending.extend(_dependencies(dep_package, text))
    return "\n".join(parts) + "\n"


class McapBagWriter:
    """Writes ROS 2 messages (as dicts) to one MCAP file; schemas registered on first use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        self._writer = Writer(self._stream)
        self._schemas: dict[str, Any] = {}
        self.messages = 0

    def write(self, topic: str, type_name: str, message: dict, time_ns: int) -> None:
        """One message of ROS 2 type `pkg/msg/Type` on `topic`, logged at `time_ns`."""
        schema = self._schemas.get(type_name)
        if schema is None:
            schema = self._writer.register_msgdef(type_name, message_definition(type_name))
            self._schemas[type_name] = schema
        self._writer.write_message(topic, schema, message, log_time=time_ns, publish_time=time_ns)
        self.messages += 1

    def close(self) -> None:
        if self._stream.closed:
            return
        self._writer.finish()
        self._stream.close()

    def discard(self) -> None:
        """Close the file and delete it: nothing written is kept."""
        self.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> McapBagWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
