"""Action-space profiles: the shipped YAML files load, round-trip, and bad profiles are refused."""

import copy
import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rt_ros.paths import action_spaces_dir
from rt_ros.runtime.action_space import (
    DEFAULT_ACTION_SPACE,
    ROLES,
    ActionDimension,
    ActionSpace,
    available_action_spaces,
    load_action_space,
)
from rt_ros.runtime.errors import ConfigError

SHIPPED = ("rt1_everyday_robots", "rt1x_google_robot", "rt2_text")
HALF_PI = 1.5707963267948966
PI = 3.141592653589793


@pytest.fixture(scope="module")
def rt1() -> ActionSpace:
    return load_action_space("rt1_everyday_robots")


def test_shipped_profiles_are_available() -> None:
    assert set(SHIPPED) <= set(available_action_spaces())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_loads_with_its_file_name(name: str) -> None:
    space = load_action_space(name)
    assert space.name == name
    assert space.num_bins == 256
    assert space.source == str(action_spaces_dir() / f"{name}.yaml")
    assert all(dim.description for dim in space.dimensions)
    assert space.mode_dimension is not None


def test_default_is_rt1_everyday_robots(rt1: ActionSpace) -> None:
    assert DEFAULT_ACTION_SPACE == "rt1_everyday_robots"
    assert load_action_space() == rt1


def test_rt1_has_11_dims_in_released_spec_order(rt1: ActionSpace) -> None:
    assert rt1.names == (
        "base_displacement_vector_x",
        "base_displacement_vector_y",
        "base_displacement_vertical_rotation",
        "gripper_closedness_action",
        "rotation_delta_roll",
        "rotation_delta_pitch",
        "rotation_delta_yaw",
        "terminate_episode",
        "world_vector_x",
        "world_vector_y",
        "world_vector_z",
    )
    assert rt1.encoding == "tokens"
    assert rt1.rotation == "rpy_delta"
    assert rt1.gripper_close_sign == 1


def test_rt1_bounds_units_and_roles(rt1: ActionSpace) -> None:
    bounds = {dim.name: (dim.low, dim.high, dim.unit) for dim in rt1.dimensions}
    assert bounds["base_displacement_vector_x"] == (-1.0, 1.0, "m")
    assert bounds["base_displacement_vertical_rotation"] == (-PI, PI, "rad")
    assert bounds["gripper_closedness_action"] == (-1.0, 1.0, "1")
    assert bounds["rotation_delta_yaw"] == (-HALF_PI, HALF_PI, "rad")
    assert bounds["world_vector_z"] == (-1.0, 1.0, "m")
    mode = rt1.mode_dimension
    assert mode is not None
    assert (mode.name, mode.kind, mode.values) == ("terminate_episode", "discrete", (0, 1, 2))
    assert mode.labels == ("terminate", "arm", "base")
    assert {dim.role for dim in rt1.dimensions} == set(ROLES)


def test_rt1x_google_robot_conventions() -> None:
    space = load_action_space("rt1x_google_robot")
    assert len(space) == 11
    assert space.names[0] == "terminate_episode"
    assert space.rotation == "axis_angle"
    assert space.gripper_close_sign == 1
    roles = [dim.role for dim in space.dimensions]
    assert roles == [
        "mode",
        "arm.linear.x",
        "arm.linear.y",
        "arm.linear.z",
        "arm.angular.x",
        "arm.angular.y",
        "arm.angular.z",
        "gripper",
        "base.angular.z",
        "base.linear.x",
        "base.linear.y",
    ]
    world = space.dimension_for_role("arm.linear.x")
    assert world is not None
    assert (world.low, world.high) == (-2.0, 2.0)


def test_rt2_text_layout() -> None:
    space = load_action_space("rt2_text")
    assert space.encoding == "text"
    assert space.names == ("terminate", "dx", "dy", "dz", "drx", "dry", "drz", "gripper")
    terminate = space.dimension("terminate")
    assert (terminate.values, terminate.labels) == ((0, 1), ("arm", "terminate"))
    assert space.dimension_for_role("base.linear.x") is None
    assert (space.dimension("drz").low, space.dimension("drz").high) == (-HALF_PI, HALF_PI)


@pytest.mark.parametrize("name", SHIPPED)
def test_to_dict_from_dict_round_trip_through_yaml(name: str) -> None:
    space = load_action_space(name)
    data = yaml.safe_load(yaml.safe_dump(space.to_dict()))
    again = ActionSpace.from_dict(data, source="manifest.yaml")
    assert again == space
    assert again.to_dict() == space.to_dict()
    assert again.source == "manifest.yaml"


def test_to_dict_matches_the_file_layout(rt1: ActionSpace) -> None:
    on_disk = yaml.safe_load((action_spaces_dir() / "rt1_everyday_robots.yaml").read_text())
    assert rt1.to_dict() == on_disk


def test_helpers(rt1: ActionSpace) -> None:
    assert rt1.index_of("terminate_episode") == 7
    assert rt1.dimension("world_vector_y").role == "arm.linear.y"
    gripper = rt1.dimension_for_role("gripper")
    assert gripper is not None
    assert gripper.name == "gripper_closedness_action"
    assert rt1.mode_dimension is not None
    assert rt1.mode_dimension.label_for(2) == "base"
    with pytest.raises(ConfigError, match=r"no dimension 'nope'.*world_vector_x"):
        rt1.index_of("nope")
    with pytest.raises(ConfigError, match=r"unknown role 'arm\.linear\.w'"):
        rt1.dimension_for_role("arm.linear.w")
    with pytest.raises(ConfigError, match=r"'terminate_episode': 3 is not one of its values"):
        rt1.mode_dimension.label_for(3)


def test_space_is_immutable(rt1: ActionSpace) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        rt1.num_bins = 128  # type: ignore[misc]
    assert isinstance(rt1.dimensions, tuple)
    assert isinstance(rt1.dimensions[7].values, tuple)


def _dim(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in data["dimensions"] if entry["name"] == name)


def _set(name: str, key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        _dim(data, name)[key] = value

    return edit


def _set_top(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data[key] = value

    return edit


def _set_convention(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        data["conventions"][key] = value

    return edit


def _swap_bounds(data: dict[str, Any]) -> None:
    _dim(data, "world_vector_x").update(low=1.0, high=-1.0)


def _duplicate_name(data: dict[str, Any]) -> None:
    _dim(data, "world_vector_y")["name"] = "world_vector_x"


def _duplicate_role(data: dict[str, Any]) -> None:
    _dim(data, "world_vector_y")["role"] = "arm.linear.x"


def _drop_field(data: dict[str, Any]) -> None:
    del _dim(data, "world_vector_z")["unit"]


def _drop_dimensions(data: dict[str, Any]) -> None:
    data["dimensions"] = []


BAD_PROFILES = [
    (_swap_bounds, r"dimension 'world_vector_x': low \(1\.0\) must be < high \(-1\.0\)"),
    (_set("world_vector_x", "low", float("nan")), r"'world_vector_x': low \(nan\) must be a fin"),
    (_set("world_vector_x", "high", float("inf")), r"'world_vector_x': high \(inf\) must be a f"),
    (_set("world_vector_x", "low", "-1"), r"'world_vector_x': low \('-1'\) must be a finite"),
    (_set("world_vector_x", "kind", "binary"), r"'world_vector_x': kind \('binary'\) must be"),
    (_set("world_vector_x", "role", "arm.x"), r"'world_vector_x': role \('arm\.x'\) must be"),
    (_set("world_vector_x", "unit", 1), r"'world_vector_x': unit \(1\) must be a non-empty"),
    (_set("world_vector_x", "values", [0, 1]), r"'world_vector_x': values/labels are only"),
    (_set("world_vector_x", "colour", "red"), r"'world_vector_x': unknown field\(s\) \['colour'"),
    (_set("terminate_episode", "values", [0, 1, 1]), r"'terminate_episode': values .* distinct"),
    (_set("terminate_episode", "values", [0, 1, 256]), r"values \(\[0, 1, 256\]\) must be < num"),
    (_set("terminate_episode", "values", [0, -1, 2]), r"values \(\[0, -1, 2\]\) must be integ"),
    (_set("terminate_episode", "values", [0, 1.5, 2]), r"values \(\[0, 1\.5, 2\]\) must be int"),
    (_set("terminate_episode", "labels", ["arm", "base"]), r"'terminate_episode': labels .*got 2"),
    (_set("terminate_episode", "labels", ["stop", "arm", "base"]), r"unknown: \['stop'\]"),
    (_set("terminate_episode", "labels", ["arm", "arm", "base"]), r"labels .* must be distinct"),
    (_set("terminate_episode", "low", 0.0), r"'terminate_episode': low/high are only for cont"),
    (_set("terminate_episode", "kind", "continuous"), r"'terminate_episode': role \('mode'\) ne"),
    (_set("gripper_closedness_action", "kind", "discrete"), r"'gripper_closedness_action': kind"),
    (_duplicate_name, r"dimension 'world_vector_x': name is used twice"),
    (_duplicate_role, r"'world_vector_y': role \('arm\.linear\.x'\) is already taken by dim"),
    (_drop_field, r"dimension 'world_vector_z': missing field\(s\) \['unit'\]"),
    (_drop_dimensions, r"dimensions must not be empty"),
    (_set_top("num_bins", 1), r"num_bins \(1\) must be an integer >= 2"),
    (_set_top("num_bins", 256.0), r"num_bins \(256\.0\) must be an integer"),
    (_set_top("encoding", "logits"), r"encoding \('logits'\) must be one of tokens, text"),
    (_set_top("bins", 256), r"unknown field\(s\) \['bins'\]"),
    (_set_convention("rotation", "quaternion"), r"rotation \('quaternion'\) must be one of"),
    (_set_convention("gripper_close_sign", 0), r"gripper_close_sign \(0\) must be \+1 or -1"),
    (_set_convention("arithmetic", "float16"), r"arithmetic \('float16'\) must be one of"),
]


@pytest.mark.parametrize(("edit", "message"), BAD_PROFILES)
def test_bad_profile_is_refused_naming_profile_dimension_field_and_value(
    rt1: ActionSpace, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = copy.deepcopy(rt1.to_dict())
    edit(data)
    with pytest.raises(ConfigError, match=r"^rt1_everyday_robots \(test\.yaml\): .*" + message):
        ActionSpace.from_dict(data, source="test.yaml")


def test_message_without_source_starts_with_the_profile_name(rt1: ActionSpace) -> None:
    data = copy.deepcopy(rt1.to_dict())
    _swap_bounds(data)
    expected = "rt1_everyday_robots: dimension 'world_vector_x': low (1.0) must be < high (-1.0)"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        ActionSpace.from_dict(data)


def test_dimension_validates_on_its_own() -> None:
    with pytest.raises(ConfigError, match=r"dimension 'x': low \(2\.0\) must be < high \(2\.0\)"):
        ActionDimension(name="x", kind="continuous", role="gripper", unit="1", low=2.0, high=2.0)
    dim = ActionDimension(name="x", kind="continuous", role="gripper", unit="1", low=-1, high=1)
    assert isinstance(dim.low, float)


def test_unknown_profile_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown action space 'rt3'; available: .*rt2_text"):
        load_action_space("rt3")


def test_profile_from_a_path(tmp_path: Path, rt1: ActionSpace) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(rt1.to_dict()))
    assert load_action_space(path) == rt1
    assert load_action_space(str(path)) == rt1


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_action_space(path)


def test_yaml_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=re.escape(f"action space file {path}: cannot read")):
        load_action_space(path)


def test_non_mapping_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: expected a mapping, got list")):
        load_action_space(path)
