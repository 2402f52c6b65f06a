"""The Gazebo path's files, checked as far as this machine allows (no Gazebo, no ros2_control):
the world SDF is well-formed and matches the MuJoCo scene, the xacro with sim:=gazebo carries
ros2_control joints whose command interfaces the controllers need, the bridge's topics meet the
nodes' parameters, the controllers' topics are the driver's, and the RViz configuration shows
the right topics in a frame of the robot."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from rt_ros.sim import robot_description as rd
from rt_ros.sim.camera_rig import camera_rig

xacro = pytest.importorskip("xacro", reason="the robot description needs xacro")

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
WORLD = REPO / "worlds" / "kitchen.sdf"
MUJOCO_SCENE = REPO / "rt_ros" / "sim" / "assets" / "kitchen.xml"
CONTROLLERS_FILE = CONFIG / "gz_ros2_control.yaml"
# Controller type -> the command interface its joints need.
TYPE_INTERFACES = {
    "velocity_controllers/JointGroupVelocityController": "velocity",
    "position_controllers/JointGroupPositionController": "position",
}


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def node_parameters(file: str, node: str) -> dict:
    return load_yaml(CONFIG / file)[f"/**/{node}"]["ros__parameters"]


def merged(base: dict, override: dict) -> dict:
    result = dict(base)
    for key, value in override.items():
        result[key] = merged(result[key], value) if isinstance(value, dict) else value
    return result


@pytest.fixture(scope="module")
def gazebo_driver() -> dict:
    """The driver's parameters as gazebo.launch.py applies them: driver.yaml, then gazebo.yaml."""
    return merged(
        node_parameters("driver.yaml", "driver_node"),
        node_parameters("gazebo.yaml", "driver_node"),
    )


@pytest.fixture(scope="module")
def controllers() -> dict:
    return load_yaml(CONTROLLERS_FILE)


@pytest.fixture(scope="module")
def gazebo_urdf() -> ET.Element:
    document = xacro.process_file(
        str(rd.xacro_path()),
        mappings={"sim": "gazebo", "controllers_file": str(CONTROLLERS_FILE)},
    )
    return ET.fromstring(document.toxml())


def controller_joints(controllers: dict, name: str) -> list[str]:
    return controllers[name]["ros__parameters"]["joints"]


# --- world ---------------------------------------------------------------------------------------


def test_world_is_well_formed_and_holds_the_mujoco_scene():
    root = ET.parse(WORLD).getroot()
    assert root.tag == "sdf"
    assert root.get("version") == "1.9"
    world = root.find("world")
    plugins = {plugin.get("name") for plugin in world.findall("plugin")}
    for system in ("Physics", "UserCommands", "SceneBroadcaster", "Sensors"):
        assert f"gz::sim::systems::{system}" in plugins
    models = {model.get("name"): model for model in world.findall("model")}
    scene = ET.parse(MUJOCO_SCENE).getroot().find("worldbody")
    mujoco_bodies = {body.get("name"): body for body in scene.findall("body")}
    # Every top-level MuJoCo body (counter, cabinet, objects) is a model at the same pose.
    for name, body in mujoco_bodies.items():
        assert name in models, f"worlds/kitchen.sdf has no model {name!r}"
        pose = [float(v) for v in models[name].find("pose").text.split()]
        np.testing.assert_allclose(pose[:3], [float(v) for v in body.get("pos").split()])
    assert {"floor", "wall"} <= models.keys()
    # Movable models have mass; static ones are marked static.
    for name, model in models.items():
        static = model.findtext("static", "false") == "true"
        for link in model.findall("link"):
            assert static or link.find("inertial") is not None, f"{name}/{link.get('name')}"
    counter = models["counter"]
    top = next(v for v in counter.iter("visual") if v.get("name") == "counter_top_visual")
    z, height = float(top.find("pose").text.split()[2]), float(top.find(".//size").text.split()[2])
    assert z + height / 2 == pytest.approx(0.90)


# --- robot description with sim:=gazebo ----------------------------------------------------------


def test_gazebo_xacro_has_ros2_control_for_every_joint(gazebo_urdf: ET.Element):
    control = gazebo_urdf.find("ros2_control")
    assert control is not None
    assert control.findtext("hardware/plugin") == "gz_ros2_control/GazeboSimSystem"
    joints = {joint.get("name") for joint in control.findall("joint")}
    assert joints == set(rd.ROBOT_JOINTS)
    urdf_joints = {joint.get("name") for joint in gazebo_urdf.findall("joint")}
    assert joints <= urdf_joints
    # Gazebo needs the robot fixed to its world; the plugin reads the controllers file.
    assert any(link.get("name") == "world" for link in gazebo_urdf.findall("link"))
    plugin = gazebo_urdf.find("gazebo/plugin")
    assert plugin.get("filename") == "gz_ros2_control-system"
    assert plugin.findtext("parameters") == str(CONTROLLERS_FILE)


def test_plain_xacro_has_no_gazebo_elements():
    root = ET.fromstring(rd.robot_urdf())
    assert root.find("ros2_control") is None
    assert root.find("gazebo") is None


def test_gazebo_urdf_keeps_the_kinematics(gazebo_urdf: ET.Element):
    pin = pytest.importorskip("pinocchio")
    plain = pin.buildModelFromXML(rd.robot_urdf())
    gazebo = pin.buildModelFromXML(ET.tostring(gazebo_urdf, encoding="unicode"))
    assert list(gazebo.names) == list(plain.names)
    q = np.random.default_rng(0).uniform(plain.lowerPositionLimit, plain.upperPositionLimit)
    positions = []
    for model in (plain, gazebo):
        data = model.createData()
        pin.framesForwardKinematics(model, data, q)
        positions.append(data.oMf[model.getFrameId(rd.END_EFFECTOR_FRAME)].translation.copy())
    np.testing.assert_allclose(positions[0], positions[1], atol=1e-12)


def test_controllers_command_interfaces_exist(gazebo_urdf: ET.Element, controllers: dict):
    interfaces = {
        joint.get("name"): {c.get("name") for c in joint.findall("command_interface")}
        for joint in gazebo_urdf.find("ros2_control").findall("joint")
    }
    manager = controllers["controller_manager"]["ros__parameters"]
    assert manager["use_sim_time"] is True
    declared = {name: spec["type"] for name, spec in manager.items() if isinstance(spec, dict)}
    assert declared["joint_state_broadcaster"] == "joint_state_broadcaster/JointStateBroadcaster"
    for name, controller_type in declared.items():
        if name == "joint_state_broadcaster":
            continue
        needed = TYPE_INTERFACES[controller_type]
        for joint in controller_joints(controllers, name):
            assert needed in interfaces[joint], f"{name} needs {joint}/{needed}"
    assert controller_joints(controllers, "arm_velocity_controller") == list(rd.ARM_JOINTS)
    assert controller_joints(controllers, "arm_position_controller") == list(rd.ARM_JOINTS)
    assert controller_joints(controllers, "gripper_controller") == list(rd.GRIPPER_JOINTS)
    assert controller_joints(controllers, "base_velocity_controller") == list(rd.BASE_JOINTS)


def test_launch_spawns_declared_controllers(controllers: dict):
    tree = ast.parse((REPO / "launch" / "gazebo.launch.py").read_text())
    spawned = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id == "CONTROLLERS"
    )
    declared = controllers["controller_manager"]["ros__parameters"]
    assert set(spawned) <= declared.keys()
    assert "joint_state_broadcaster" in spawned


# --- topics: bridge, controllers and node parameters meet ----------------------------------------


def test_bridge_topics_meet_the_nodes_and_the_camera_sensor(gazebo_urdf: ET.Element):
    bridge = {entry["ros_topic_name"]: entry for entry in load_yaml(CONFIG / "gz_bridge.yaml")}
    policy = node_parameters("policy.yaml", "policy_node")
    sim = node_parameters("sim.yaml", "driver_node")["sim"]
    image = bridge[policy["image_topic"]]
    assert image["ros_type_name"] == "sensor_msgs/msg/Image"
    info = bridge[sim["camera_info_topic"]]
    assert info["ros_type_name"] == "sensor_msgs/msg/CameraInfo"
    assert bridge["/clock"]["gz_type_name"] == "gz.msgs.Clock"
    for entry in bridge.values():
        assert entry["direction"] == "GZ_TO_ROS"
    # The gz side is what the head camera sensor publishes, in the optical frame.
    sensor = gazebo_urdf.find("gazebo[@reference='head_camera_link']/sensor")
    assert sensor.get("type") == "camera"
    assert sensor.findtext("topic") == image["gz_topic_name"]
    assert sensor.findtext("camera/camera_info_topic") == info["gz_topic_name"]
    assert sensor.findtext("camera/optical_frame_id") == rd.HEAD_CAMERA_OPTICAL_FRAME
    # Gazebo renders the sim's default rig (the shipped model's camera).
    rig = camera_rig(sim["camera_rig"])
    assert (sim["camera_width_px"], sim["camera_height_px"]) == (0, 0)
    assert int(sensor.findtext("camera/image/width")) == rig.width_px
    assert int(sensor.findtext("camera/image/height")) == rig.height_px


def test_driver_publishes_to_the_controllers(gazebo_driver: dict, controllers: dict):
    topics = gazebo_driver["ros_topics"]
    assert gazebo_driver["backend"] == "ros_topics"
    assert topics["arm_interface"] == "joint_velocity"
    # Empty: the interface's own controller (checked in the test below).
    assert topics["arm_joint_command_topic"] == ""
    assert topics["arm_joints"] == controller_joints(controllers, "arm_velocity_controller")
    assert topics["base_interface"] == "joint_velocity"
    assert topics["base_joint_command_topic"] == "base_velocity_controller/commands"
    assert topics["base_joints"] == controller_joints(controllers, "base_velocity_controller")
    assert topics["gripper_topic"] == "gripper_controller/commands"
    assert topics["gripper_joint_count"] == len(
        controller_joints(controllers, "gripper_controller")
    )
    stroke = rd.joint_limits()[rd.GRIPPER_JOINTS[0]].upper
    assert topics["gripper_open_position"] == stroke
    assert topics["gripper_closed_position"] == 0.0
    # joint_state_broadcaster publishes /joint_states.
    assert topics["joint_states_topic"] == "/joint_states"
    # The holonomic base may move sideways in Gazebo.
    assert gazebo_driver["max_base_linear_speed_mps"][1] > 0.0


def test_backend_default_topics_name_declared_controllers(controllers: dict):
    pytest.importorskip("rclpy", reason="the backend module needs rclpy")
    from rt_ros.nodes.backends.ros_topics_backend import DEFAULT_ARM_JOINT_TOPICS, RosTopicsConfig

    declared = controllers["controller_manager"]["ros__parameters"]
    assert DEFAULT_ARM_JOINT_TOPICS["joint_velocity"] == "arm_velocity_controller/commands"
    assert DEFAULT_ARM_JOINT_TOPICS["joint_position"] == "arm_position_controller/commands"
    for topic in (*DEFAULT_ARM_JOINT_TOPICS.values(), RosTopicsConfig().base_joint_command_topic):
        controller, _, suffix = topic.partition("/")
        assert suffix == "commands"
        assert controller in declared


# --- RViz ----------------------------------------------------------------------------------------


def test_rviz_config_shows_the_robot_camera_and_commanded_twist():
    config = load_yaml(REPO / "rviz" / "rt_ros.rviz")
    manager = config["Visualization Manager"]
    links = {link.get("name") for link in ET.fromstring(rd.robot_urdf()).findall("link")}
    assert manager["Global Options"]["Fixed Frame"] in links
    displays = {display["Class"]: display for display in manager["Displays"]}
    policy = node_parameters("policy.yaml", "policy_node")
    assert displays["rviz_default_plugins/RobotModel"]["Description Topic"]["Value"] == (
        "/robot_description"
    )
    image_topic = displays["rviz_default_plugins/Image"]["Topic"]["Value"]
    assert image_topic == "/" + policy["image_topic"]
    twist_topic = displays["rviz_default_plugins/TwistStamped"]["Topic"]["Value"]
    assert twist_topic == "/driver/commanded/arm"
    assert "rviz_default_plugins/TF" in displays
