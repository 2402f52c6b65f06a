"""Action-space profiles: the order, bounds, units and conventions of a policy's action dimensions.

The profiles live as YAML under config/action_spaces/ (DESIGN.md, "Action spaces"); this module
only loads and validates them, so no bound or order is ever written in code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rt_ros.paths import action_spaces_dir
from rt_ros.runtime.errors import ConfigError

DEFAULT_ACTION_SPACE = "rt1_everyday_robots"

KINDS = ("continuous", "discrete")
ENCODINGS = ("tokens", "text")
ROTATIONS = ("rpy_delta", "axis_angle")
# How value <-> token arithmetic is evaluated: "float32" reproduces RT-1's reference tokenizer bit
# for bit (float32 bounds and intermediates, truncation); "float64" is exact-arithmetic floor.
ARITHMETICS = ("float32", "float64")
DEFAULT_ARITHMETIC = "float64"
GRIPPER_CLOSE_SIGNS = (1, -1)
MODE_ROLE = "mode"
ROLES = (
    "arm.linear.x",
    "arm.linear.y",
    "arm.linear.z",
    "arm.angular.x",
    "arm.angular.y",
    "arm.angular.z",
    "gripper",
    "base.linear.x",
    "base.linear.y",
    "base.angular.z",
    MODE_ROLE,
)
MODE_LABELS = ("arm", "base", "terminate")

_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIMENSION_KEYS = (
    "name",
    "kind",
    "role",
    "unit",
    "low",
    "high",
    "values",
    "labels",
    "description",
)
_SPACE_KEYS = ("name", "description", "encoding", "num_bins", "conventions", "dimensions")
_CONVENTION_KEYS = ("rotation", "gripper_close_sign", "arithmetic")
_REQUIRED_CONVENTION_KEYS = ("rotation", "gripper_close_sign")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_keys(where: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; allowed: {', '.join(allowed)}")


def _require(where: str, data: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {missing}")


@dataclass(frozen=True)
class ActionDimension:
    """One action dimension: continuous (bounded, in `unit`) or discrete (integer values + labels).

    Messages of errors raised here name the dimension and the field; ActionSpace adds the profile.
    """

    name: str
    kind: str
    role: str
    unit: str
    low: float | None = None
    high: float | None = None
    values: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_PATTERN.fullmatch(self.name):
            raise ConfigError(f"dimension {self.name!r}: name must be an identifier")
        where = f"dimension {self.name!r}"
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: kind ({self.kind!r}) must be one of {', '.join(KINDS)}")
        if self.role not in ROLES:
            raise ConfigError(f"{where}: role ({self.role!r}) must be one of {', '.join(ROLES)}")
        if not isinstance(self.unit, str) or not self.unit:
            raise ConfigError(
                f"{where}: unit ({self.unit!r}) must be a non-empty string "
                '(quote it in YAML: unit: "1")'
            )
        if not isinstance(self.description, str):
            raise ConfigError(f"{where}: description ({self.description!r}) must be a string")
        if self.kind == "continuous":
            self._validate_continuous(where)
        else:
            self._validate_discrete(where)

    def _validate_continuous(self, where: str) -> None:
        if self.role == MODE_ROLE:
            raise ConfigError(f"{where}: role ({self.role!r}) needs kind 'discrete'")
        if self.values or self.labels:
            raise ConfigError(f"{where}: values/labels are only for discrete dimensions")
        for field_name in ("low", "high"):
            bound = getattr(self, field_name)
            if not _is_real(bound) or not math.isfinite(bound):
                raise ConfigError(f"{where}: {field_name} ({bound!r}) must be a finite number")
            object.__setattr__(self, field_name, float(bound))
        if not self.low < self.high:
            raise ConfigError(f"{where}: low ({self.low!r}) must be < high ({self.high!r})")

    def _validate_discrete(self, where: str) -> None:
        if self.role != MODE_ROLE:
            # A discrete value is not in the profile's units, so it cannot drive a motion role.
            raise ConfigError(f"{where}: kind 'discrete' is only allowed for role {MODE_ROLE!r}")
        if self.low is not None or self.high is not None:
            raise ConfigError(f"{where}: low/high are only for continuous dimensions")
        if isinstance(self.values, (str, bytes)) or not hasattr(self.values, "__iter__"):
            raise ConfigError(f"{where}: values ({self.values!r}) must be a list of integers")
        if isinstance(self.labels, (str, bytes)) or not hasattr(self.labels, "__iter__"):
            raise ConfigError(f"{where}: labels ({self.labels!r}) must be a list of strings")
        values, labels = tuple(self.values), tuple(self.labels)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "labels", labels)
        if not values:
            raise ConfigError(f"{where}: values must not be empty")
        if not all(_is_int(value) and value >= 0 for value in values):
            raise ConfigError(f"{where}: values ({list(values)}) must be integers >= 0")
        if len(set(values)) != len(values):
            raise ConfigError(f"{where}: values ({list(values)}) must be distinct")
        if len(labels) != len(values):
            raise ConfigError(
                f"{where}: labels ({list(labels)}) must have one label per value "
                f"({len(values)}), got {len(labels)}"
            )
        if not all(isinstance(label, str) and label for label in labels):
            raise ConfigError(f"{where}: labels ({list(labels)}) must be non-empty strings")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{where}: labels ({list(labels)}) must be distinct")
        unknown = [label for label in labels if label not in MODE_LABELS]
        if unknown:
            raise ConfigError(
                f"{where}: labels ({list(labels)}) of the mode dimension must come from "
                f"{', '.join(MODE_LABELS)}; unknown: {unknown}"
            )

    @property
    def is_discrete(self) -> bool:
        return self.kind == "discrete"

    def label_for(self, value: int) -> str:
        """The label of a discrete value; ConfigError when the value is not one of `values`."""
        if value not in self.values:
            raise ConfigError(
                f"dimension {self.name!r}: {value!r} is not one of its values {list(self.values)}"
            )
        return self.labels[self.values.index(value)]

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-ready form; fields that do not apply to the kind are left out."""
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "role": self.role}
        data["unit"] = self.unit
        if self.is_discrete:
            data["values"] = list(self.values)
            data["labels"] = list(self.labels)
        else:
            data["low"] = self.low
            data["high"] = self.high
        data["description"] = self.description
        return data

    @classmethod
    def from_dict(cls, data: object, index: int) -> ActionDimension:
        """Build from a profile entry; `index` names the entry when it has no usable name."""
        where = f"dimension {index}"
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        if isinstance(data.get("name"), str):
            where = f"dimension {data['name']!r}"
        _check_keys(where, data, _DIMENSION_KEYS)
        _require(where, data, ("name", "kind", "role", "unit"))
        return cls(
            name=data["name"],
            kind=data["kind"],
            role=data["role"],
            unit=data["unit"],
            low=data.get("low"),
            high=data.get("high"),
            values=data.get("values", ()),
            labels=data.get("labels", ()),
            description=data.get("description", ""),
        )


@dataclass(frozen=True)
class ActionSpace:
    """An ordered, validated set of action dimensions with its encoding and conventions.

    `rotation`, `gripper_close_sign` and `arithmetic` sit under `conventions:` in the YAML
    (`arithmetic` may be left out: float64). `source` says where the profile came from (a file, a
    manifest); it appears in error messages and nowhere else.
    """

    name: str
    description: str
    encoding: str
    num_bins: int
    rotation: str
    gripper_close_sign: int
    dimensions: tuple[ActionDimension, ...]
    arithmetic: str = DEFAULT_ARITHMETIC
    source: str | None = field(default=None, compare=False)
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_PATTERN.fullmatch(self.name):
            raise ConfigError(f"{self._where()}: name ({self.name!r}) must be an identifier")
        where = self._where()
        if not isinstance(self.description, str):
            raise ConfigError(f"{where}: description ({self.description!r}) must be a string")
        if self.encoding not in ENCODINGS:
            raise ConfigError(
                f"{where}: encoding ({self.encoding!r}) must be one of {', '.join(ENCODINGS)}"
            )
        if not _is_int(self.num_bins) or self.num_bins < 2:
            raise ConfigError(f"{where}: num_bins ({self.num_bins!r}) must be an integer >= 2")
        if self.rotation not in ROTATIONS:
            raise ConfigError(
                f"{where}: rotation ({self.rotation!r}) must be one of {', '.join(ROTATIONS)}"
            )
        if not _is_int(self.gripper_close_sign) or self.gripper_close_sign not in (1, -1):
            raise ConfigError(
                f"{where}: gripper_close_sign ({self.gripper_close_sign!r}) must be +1 or -1"
            )
        if self.arithmetic not in ARITHMETICS:
            raise ConfigError(
                f"{where}: arithmetic ({self.arithmetic!r}) must be one of "
                f"{', '.join(ARITHMETICS)}"
            )
        dimensions = tuple(self.dimensions)
        object.__setattr__(self, "dimensions", dimensions)
        if not dimensions:
            raise ConfigError(f"{where}: dimensions must not be empty")
        self._validate_dimensions(where, dimensions)
        index = {dim.name: i for i, dim in enumerate(dimensions)}
        object.__setattr__(self, "_index", index)

    def _where(self) -> str:
        return f"{self.name} ({self.source})" if self.source else str(self.name)

    def _validate_dimensions(self, where: str, dimensions: tuple[ActionDimension, ...]) -> None:
        names: set[str] = set()
        roles: dict[str, str] = {}
        for dim in dimensions:
            if not isinstance(dim, ActionDimension):
                raise ConfigError(f"{where}: dimensions must be ActionDimension, got {dim!r}")
            if dim.name in names:
                raise ConfigError(f"{where}: dimension {dim.name!r}: name is used twice")
            names.add(dim.name)
            if dim.role in roles:
                raise ConfigError(
                    f"{where}: dimension {dim.name!r}: role ({dim.role!r}) is already taken "
                    f"by dimension {roles[dim.role]!r}"
                )
            roles[dim.role] = dim.name
            too_big = [value for value in dim.values if value >= self.num_bins]
            if too_big:
                raise ConfigError(
                    f"{where}: dimension {dim.name!r}: values ({list(dim.values)}) must be "
                    f"< num_bins ({self.num_bins}); too big: {too_big}"
                )

    @property
    def names(self) -> tuple[str, ...]:
        """Dimension names in profile order."""
        return tuple(dim.name for dim in self.dimensions)

    def __len__(self) -> int:
        return len(self.dimensions)

    def index_of(self, name: str) -> int:
        """Position of a dimension in the profile order; ConfigError for an unknown name."""
        try:
            return self._index[name]
        except KeyError:
            raise ConfigError(
                f"{self._where()}: no dimension {name!r}; dimensions: {', '.join(self.names)}"
            ) from None

    def dimension(self, name: str) -> ActionDimension:
        """The dimension called `name`; ConfigError for an unknown name."""
        return self.dimensions[self.index_of(name)]

    def dimension_for_role(self, role: str) -> ActionDimension | None:
        """The dimension that plays `role`, or None when this profile has none (e.g. no base)."""
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        return next((dim for dim in self.dimensions if dim.role == role), None)

    @property
    def mode_dimension(self) -> ActionDimension | None:
        """The discrete dimension that chooses arm / base / terminate, if the profile has one."""
        return self.dimension_for_role(MODE_ROLE)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-ready form in the profile-file layout (the model manifest embeds it)."""
        return {
            "name": self.name,
            "description": self.description,
            "encoding": self.encoding,
            "num_bins": self.num_bins,
            "conventions": {
                "rotation": self.rotation,
                "gripper_close_sign": self.gripper_close_sign,
                "arithmetic": self.arithmetic,
            },
            "dimensions": [dim.to_dict() for dim in self.dimensions],
        }

    @classmethod
    def from_dict(cls, data: object, source: str | None = None) -> ActionSpace:
        """Build from the profile layout (a loaded YAML file or a manifest's embedded copy)."""
        where = source or "action space"
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        if isinstance(data.get("name"), str):
            where = f"{data['name']} ({source})" if source else data["name"]
        _check_keys(where, data, _SPACE_KEYS)
        _require(where, data, _SPACE_KEYS)
        conventions = data["conventions"]
        if not isinstance(conventions, Mapping):
            raise ConfigError(f"{where}: conventions ({conventions!r}) must be a mapping")
        _check_keys(f"{where}: conventions", conventions, _CONVENTION_KEYS)
        _require(f"{where}: conventions", conventions, _REQUIRED_CONVENTION_KEYS)
        entries = data["dimensions"]
        if not isinstance(entries, list):
            raise ConfigError(f"{where}: dimensions ({entries!r}) must be a list")
        try:
            dimensions = tuple(
                ActionDimension.from_dict(entry, index) for index, entry in enumerate(entries)
            )
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        return cls(
            name=data["name"],
            description=data["description"],
            encoding=data["encoding"],
            num_bins=data["num_bins"],
            rotation=conventions["rotation"],
            gripper_close_sign=conventions["gripper_close_sign"],
            dimensions=dimensions,
            arithmetic=conventions.get("arithmetic", DEFAULT_ARITHMETIC),
            source=source,
        )


def available_action_spaces() -> tuple[str, ...]:
    """Names of the shipped profiles (the YAML files under action_spaces_dir())."""
    folder = action_spaces_dir()
    return tuple(sorted(path.stem for path in folder.glob("*.yaml"))) if folder.is_dir() else ()


def load_action_space(name_or_path: str | Path = DEFAULT_ACTION_SPACE) -> ActionSpace:
    """Load a profile by bare name (from action_spaces_dir()) or from a YAML file path."""
    text = str(name_or_path)
    is_path = isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml"))
    if is_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"action space file {path} does not exist")
    else:
        path = action_spaces_dir() / f"{text}.yaml"
        if not path.is_file():
            available = ", ".join(available_action_spaces()) or "none"
            raise ConfigError(
                f"unknown action space {text!r}; available: {available} (in {action_spaces_dir()})"
            )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"action space file {path}: cannot read it as YAML: {error}") from None
    return ActionSpace.from_dict(data, source=str(path))
