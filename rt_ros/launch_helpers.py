"""Launch arguments and node actions shared by launch/robot.launch.py and launch/sim.launch.py.

Only launch files import this module: it needs the ROS 2 `launch` and `launch_ros` packages, which
a pip-only install of rt_ros lacks, and nothing else in rt_ros imports it. An argument left empty
keeps the value in the node's parameter file; one that is set overrides it. The parameter files a
launch writes (overrides, namespaced copies) live in one temporary folder, removed when the launch
shuts down.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from launch.action import Action
from launch.actions import DeclareLaunchArgument, RegisterEventHandler, Shutdown
from launch.event_handlers import OnShutdown
from launch.launch_context import LaunchContext
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "rt_ros"
POLICY_NODE = "policy_node"
DRIVER_NODE = "driver_node"
LOG_LEVELS = ["debug", "info", "warn", "error", "fatal"]
BOOLEANS = ["true", "false"]
# Launch arguments that override the policy node's string parameter of the same name when set.
POLICY_TOPIC_ARGUMENTS = ("image_topic", "instruction_topic")
# Where Fast DDS looks for its XML profile: version 3 (Kilted on), version 2 (Humble, Jazzy).
DDS_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
# rmw_fastrtps takes the profile's history memory policy (config/fastdds.xml) only with this.
DDS_QOS_FROM_XML = "RMW_FASTRTPS_USE_QOS_FROM_XML"


def declare_arguments() -> list[DeclareLaunchArgument]:
    """The arguments every rt_ros launch file takes."""
    config = PathJoinSubstitution([FindPackageShare(PACKAGE), "config"])
    return [
        DeclareLaunchArgument(
            "model_path",
            default_value="",
            description="Model bundle folder (manifest.yaml and the ONNX graphs), e.g. one made "
            "by `rt-ros export`. Empty: model_path from policy_params_file.",
        ),
        DeclareLaunchArgument(
            "policy_params_file",
            default_value=PathJoinSubstitution([config, "policy.yaml"]),
            description="Policy node parameters (YAML with a policy_node: ros__parameters: "
            "section). Empty: the node's built-in defaults.",
        ),
        DeclareLaunchArgument(
            "driver_params_file",
            default_value=PathJoinSubstitution([config, "driver.yaml"]),
            description="Driver node parameters: backend topics, safety limits, timeouts (YAML "
            "with a driver_node: ros__parameters: section). Empty: the built-in defaults.",
        ),
        DeclareLaunchArgument(
            "namespace",
            default_value="",
            description="Namespace of both nodes, one per robot (e.g. robot1); their relative "
            "topics (camera/image_raw, cmd/*, cmd_vel, ...) move into it. Empty: none.",
        ),
        DeclareLaunchArgument(
            "control_rate_hz",
            default_value="",
            description="Policy steps per second (RT-1: 3.0). Empty: control_rate_hz from "
            "policy_params_file.",
        ),
        DeclareLaunchArgument(
            "providers",
            default_value="",
            description="Inference providers in order of preference, comma-separated: auto "
            "(cuda, then cpu; at bf16 openvino between them), tensorrt, cuda, openvino, cpu "
            "(e.g. cuda,cpu). Empty: providers from "
            "policy_params_file.",
        ),
        DeclareLaunchArgument(
            "image_topic",
            default_value="",
            description="Camera topic (sensor_msgs/Image) the policy reads, e.g. "
            "/camera/color/image_raw. Empty: image_topic from policy_params_file.",
        ),
        DeclareLaunchArgument(
            "instruction_topic",
            default_value="",
            description="Instruction topic (std_msgs/String, transient local) the policy reads. "
            "Empty: instruction_topic from policy_params_file.",
        ),
        DeclareLaunchArgument(
            "dds_profile",
            # A profile already exported (under either name) wins over the package's own.
            default_value=EnvironmentVariable(
                DDS_PROFILE_VARIABLES[0],
                default_value=EnvironmentVariable(
                    DDS_PROFILE_VARIABLES[1],
                    default_value=PathJoinSubstitution([config, "fastdds.xml"]),
                ),
            ),
            description="Fast DDS XML profile for the processes this launch starts (as "
            "FASTDDS_DEFAULT_PROFILES_FILE and FASTRTPS_DEFAULT_PROFILES_FILE, with "
            "RMW_FASTRTPS_USE_QOS_FROM_XML=1 so its memory policies apply). Default: one "
            "already exported, else the package's config/fastdds.xml, whose shared-memory "
            "segment carries camera frames above 512 KiB (the camera's own process needs it "
            "too). Empty: Fast DDS's defaults.",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            choices=BOOLEANS,
            description="Both nodes use /clock instead of the system clock.",
        ),
        DeclareLaunchArgument(
            "log_level",
            default_value="info",
            choices=LOG_LEVELS,
            description="Logging level of both nodes.",
        ),
    ]


def rt_ros_nodes(
    context: LaunchContext,
    backend: str,
    driver_params_arguments: Sequence[str] = ("driver_params_file",),
) -> list[Action]:
    """The policy node and the driver node on `backend`; the function of an OpaqueFunction.

    `driver_params_arguments` names the launch arguments holding driver parameter files, applied
    in order (a later file overrides an earlier one; empty ones are skipped). Also returned: the
    handler that removes this launch's parameter folder at shutdown.
    """
    namespace = _argument(context, "namespace").rstrip("/")
    # Under a namespace (ours, or one an including file pushed), plain node sections need scoping.
    scoped = bool(namespace or context.launch_configurations.get("ros_namespace"))
    use_sim_time = _argument(context, "use_sim_time") == "true"

    policy_overrides: dict[str, Any] = {"use_sim_time": use_sim_time}
    if model_path := _argument(context, "model_path"):
        policy_overrides["model_path"] = os.path.expanduser(model_path)
    for name in POLICY_TOPIC_ARGUMENTS:
        if topic := _argument(context, name):
            policy_overrides[name] = topic
    if rate := _argument(context, "control_rate_hz"):
        policy_overrides["control_rate_hz"] = _positive_float("control_rate_hz", rate)
    if providers := _argument(context, "providers"):
        policy_overrides["providers"] = _string_list(providers)
    driver_overrides = {"backend": backend, "use_sim_time": use_sim_time}

    policy_files = _params_files(context, ["policy_params_file"])
    driver_files = _params_files(context, driver_params_arguments)
    dds_env = dds_environment(context)
    folder = Path(tempfile.mkdtemp(prefix="rt_ros_launch_params_"))
    try:
        if scoped:
            policy_files = _scoped_params_files(policy_files, POLICY_NODE, folder)
            driver_files = _scoped_params_files(driver_files, DRIVER_NODE, folder)
        policy_files.append(_overrides_file(policy_overrides, POLICY_NODE, folder))
        driver_files.append(_overrides_file(driver_overrides, DRIVER_NODE, folder))
    except (OSError, ValueError):
        shutil.rmtree(folder, ignore_errors=True)
        raise
    common: dict[str, Any] = {
        "package": PACKAGE,
        "namespace": namespace or None,
        "output": "screen",
        "ros_arguments": ["--log-level", _argument(context, "log_level")],
        "additional_env": dds_env,
    }
    # The two nodes work only as a pair: when either exits (a bad bundle, a backend that cannot
    # be configured), the launch ends rather than leaving half a robot running. The nodes read
    # their parameter files at start-up; the folder goes when the launch shuts down. The override
    # files come last: a set launch argument wins over every file.
    return [
        Node(
            executable=POLICY_NODE,
            parameters=[str(path) for path in policy_files],
            on_exit=Shutdown(reason=f"{POLICY_NODE} exited"),
            **common,
        ),
        Node(
            executable=DRIVER_NODE,
            parameters=[str(path) for path in driver_files],
            on_exit=Shutdown(reason=f"{DRIVER_NODE} exited"),
            **common,
        ),
        RegisterEventHandler(
            OnShutdown(
                on_shutdown=lambda _event, _context: shutil.rmtree(folder, ignore_errors=True)
            )
        ),
    ]


def dds_environment(context: LaunchContext) -> dict[str, str]:
    """The variables that make Fast DDS load the `dds_profile` launch argument's file in a
    process; none when the argument is empty. A missing file fails the launch."""
    if not (value := _argument(context, "dds_profile")):
        return {}
    path = Path(os.path.expanduser(value))
    if not path.is_file():
        raise FileNotFoundError(f"launch argument dds_profile: {str(path)!r} is not a file")
    return {**dict.fromkeys(DDS_PROFILE_VARIABLES, str(path)), DDS_QOS_FROM_XML: "1"}


def scoped_params_file(path: Path, node_name: str, copy: Path) -> Path:
    """`path`, or `copy`: the file with its `node_name:` section keyed to apply in a namespace.

    rcl applies a section keyed `policy_node` to `/policy_node` only, not to
    `/robot1/policy_node`; the copy keys it `/**/policy_node`, which matches in any namespace.
    Files without a plain section, or with a wildcard one already, are passed unchanged.
    """
    try:
        sections = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"parameter file {str(path)!r} is not valid YAML: {error}") from error
    wildcard, plain = f"/**/{node_name}", {node_name, f"/{node_name}"}
    if not isinstance(sections, dict) or wildcard in sections or not plain & sections.keys():
        return path
    scoped = {(wildcard if key in plain else key): value for key, value in sections.items()}
    copy.write_text(yaml.safe_dump(scoped, sort_keys=False), encoding="utf-8")
    return copy


def _argument(context: LaunchContext, name: str) -> str:
    return LaunchConfiguration(name).perform(context).strip()


def _params_files(context: LaunchContext, arguments: Sequence[str]) -> list[Path]:
    """The files the launch arguments name, in order, empty ones skipped. A missing file fails
    the launch: launch_ros would only warn and run the node on its defaults."""
    files = []
    for name in arguments:
        if not (value := _argument(context, name)):
            continue
        path = Path(os.path.expanduser(value))
        if not path.is_file():
            raise FileNotFoundError(f"launch argument {name}: {str(path)!r} is not a file")
        files.append(path)
    return files


def _scoped_params_files(files: list[Path], node_name: str, folder: Path) -> list[Path]:
    return [
        scoped_params_file(path, node_name, folder / f"{node_name}_{index}.yaml")
        for index, path in enumerate(files)
    ]


def _overrides_file(overrides: dict[str, Any], node_name: str, folder: Path) -> Path:
    """The launch arguments' parameters as a file in `folder`, keyed for any namespace (given a
    dict, launch_ros would write a temporary file of its own and never remove it)."""
    path = folder / f"{node_name}_overrides.yaml"
    sections = {f"/**/{node_name}": {"ros__parameters": overrides}}
    path.write_text(yaml.safe_dump(sections, sort_keys=False), encoding="utf-8")
    return path


def _positive_float(name: str, text: str) -> float:
    """A launch argument as a float > 0 (ROS double parameters refuse `5`; 5.0 it is)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"launch argument {name} must be a number, got {text!r}") from None
    if not value > 0.0:
        raise ValueError(f"launch argument {name} must be > 0, got {text!r}")
    return value


def _string_list(text: str) -> list[str]:
    """`cuda,cpu`, `[cuda, cpu]` or `cpu` as a list of names."""
    items = [item.strip().strip("'\"") for item in text.strip("[]").split(",")]
    return [item for item in items if item]
