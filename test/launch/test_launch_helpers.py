"""rt_ros.launch_helpers without running a launch: the namespace rewrite of plain-keyed params
files, the launch arguments' overrides file, and the folder holding both, removed at shutdown.
test_robot_launch.py checks the same through a real launch in a namespace."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml

REASON = (
    "launch_helpers needs launch and launch_ros: a ROS 2 install or the launch wheels that "
    "scripts/setup.sh installs from ../shared/wheels/ros2-launch"
)
pytest.importorskip("launch", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)

from launch.actions import RegisterEventHandler  # noqa: E402
from launch.event_handlers import OnShutdown  # noqa: E402
from launch.events import Shutdown  # noqa: E402
from launch.launch_context import LaunchContext  # noqa: E402
from launch_ros.actions import Node  # noqa: E402

from rt_ros.launch_helpers import (  # noqa: E402
    DDS_PROFILE_VARIABLES,
    DDS_QOS_FROM_XML,
    dds_environment,
    declare_arguments,
    rt_ros_nodes,
    scoped_params_file,
)

PLAIN = {
    "policy_node": {"ros__parameters": {"control_rate_hz": 3.0, "providers": ["cpu"]}},
    "other_node": {"ros__parameters": {"x": 1}},
}


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("plain_key", ["policy_node", "/policy_node"])
def test_a_plain_section_is_copied_keyed_for_any_namespace(tmp_path, plain_key):
    data = {plain_key: PLAIN["policy_node"], "other_node": PLAIN["other_node"]}
    original = write_yaml(tmp_path / "policy.yaml", data)
    before = original.read_text()
    copy = scoped_params_file(original, "policy_node", tmp_path / "copy.yaml")
    assert copy == tmp_path / "copy.yaml"
    assert yaml.safe_load(copy.read_text()) == {
        "/**/policy_node": PLAIN["policy_node"],
        "other_node": PLAIN["other_node"],
    }
    assert original.read_text() == before


@pytest.mark.parametrize(
    "data",
    [
        {"/**/policy_node": PLAIN["policy_node"]},  # applies in any namespace already
        {"other_node": PLAIN["other_node"]},  # nothing for this node
        ["not", "a", "mapping"],
    ],
)
def test_other_files_pass_unchanged_and_nothing_is_written(tmp_path, data):
    original = write_yaml(tmp_path / "policy.yaml", data)
    assert scoped_params_file(original, "policy_node", tmp_path / "copy.yaml") == original
    assert not (tmp_path / "copy.yaml").exists()


def test_invalid_yaml_is_named(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("policy_node: [unclosed\n")
    with pytest.raises(ValueError, match=r"broken\.yaml.*not valid YAML"):
        scoped_params_file(broken, "policy_node", tmp_path / "copy.yaml")


def launch_context(**arguments: str) -> LaunchContext:
    """A context holding every argument rt_ros_nodes reads, empty unless given."""
    context = LaunchContext()
    names = (
        "model_path", "policy_params_file", "driver_params_file", "namespace", "control_rate_hz",
        "providers", "image_topic", "instruction_topic", "dds_profile",
    )  # fmt: skip
    context.launch_configurations.update(dict.fromkeys(names, ""))
    context.launch_configurations.update(use_sim_time="false", log_level="info", **arguments)
    return context


def test_a_launch_writes_its_params_into_one_folder_removed_at_shutdown(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    policy_file = write_yaml(tmp_path / "policy.yaml", PLAIN)
    driver_file = write_yaml(tmp_path / "driver.yaml", {"/**/driver_node": {}})
    context = launch_context(
        policy_params_file=str(policy_file),
        driver_params_file=str(driver_file),
        namespace="robot1",
        control_rate_hz="10",
        providers="cuda,cpu",
    )
    actions = rt_ros_nodes(context, backend="sim")

    assert [type(action) for action in actions] == [Node, Node, RegisterEventHandler]
    (folder,) = (tmp_path / "tmp").iterdir()
    written = {path.name: yaml.safe_load(path.read_text()) for path in folder.iterdir()}
    # The plain-keyed policy file, keyed for the namespace (the driver's applies already), and
    # each node's launch arguments, typed as ROS parameters.
    assert set(written) == {
        "policy_node_0.yaml",
        "policy_node_overrides.yaml",
        "driver_node_overrides.yaml",
    }
    assert written["policy_node_0.yaml"] == {
        "/**/policy_node": PLAIN["policy_node"],
        "other_node": PLAIN["other_node"],
    }
    assert written["policy_node_overrides.yaml"] == {
        "/**/policy_node": {
            "ros__parameters": {
                "use_sim_time": False,
                "control_rate_hz": 10.0,
                "providers": ["cuda", "cpu"],
            }
        }
    }
    assert written["driver_node_overrides.yaml"] == {
        "/**/driver_node": {"ros__parameters": {"backend": "sim", "use_sim_time": False}}
    }

    handler = actions[2].event_handler
    assert isinstance(handler, OnShutdown)
    handler.handle(Shutdown(), context)
    assert not folder.exists()


def test_a_missing_params_file_fails_the_launch_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    context = launch_context(policy_params_file=str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match="policy_params_file"):
        rt_ros_nodes(context, backend="sim")
    assert not list((tmp_path / "tmp").iterdir())


def test_the_dds_profile_reaches_both_nodes_under_both_fast_dds_names(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    profile = tmp_path / "fastdds.xml"
    profile.write_text("<profiles/>")
    context = launch_context(dds_profile=str(profile))
    expected = {**dict.fromkeys(DDS_PROFILE_VARIABLES, str(profile)), DDS_QOS_FROM_XML: "1"}
    assert dds_environment(context) == expected
    policy, driver, _ = rt_ros_nodes(context, backend="sim")
    for node in (policy, driver):
        names = {
            "".join(part.perform(context) for part in name): "".join(
                part.perform(context) for part in value
            )
            for name, value in node.additional_env
        }
        assert names == expected
    assert dds_environment(launch_context()) == {}  # empty: Fast DDS's own defaults
    with pytest.raises(FileNotFoundError, match="dds_profile"):
        dds_environment(launch_context(dds_profile=str(tmp_path / "missing.xml")))


def test_the_default_dds_profile_is_the_packages_unless_one_is_exported(monkeypatch):
    (argument,) = [a for a in declare_arguments() if a.name == "dds_profile"]
    for name in DDS_PROFILE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    context = LaunchContext()
    default = "".join(part.perform(context) for part in argument.default_value)
    assert default.endswith("config/fastdds.xml")
    monkeypatch.setenv(DDS_PROFILE_VARIABLES[1], "/etc/mine.xml")
    assert "".join(part.perform(context) for part in argument.default_value) == "/etc/mine.xml"
