"""The MuJoCo model: the robot from its URDF inside the kitchen MJCF, with servos and a camera.

The robot is compiled from the same URDF that RViz and Gazebo read (robot_description); only
simulator matters are added here: collision bits and friction, gravity compensation of the arm,
position servos for the base, arm and fingers, and the head camera on the optical frame.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import math
from dataclasses import dataclass, field

import mujoco

from rt_ros.sim import robot_description as rd
from rt_ros.sim.robot_description import HeadMount

KITCHEN_MJCF = "kitchen.xml"
HEAD_CAMERA = "head_camera"
DRAWER_JOINT = "drawer_slide"
DRAWER_BODY = "drawer"
DRAWER_CABINET_BODY = "drawer_cabinet"
DRAWER_HANDLE_SITE = "drawer_handle"
COUNTER_TOP_GEOM = "counter_top"
COUNTER_BODY = "counter"

_ATTACH_PREFIX = "robot/"
# Collision bits (see kitchen.xml): the robot touches the scene (bit 0) but never itself.
ROBOT_CONTYPE = 2
ROBOT_CONAFFINITY = 1
# Geom group of the robot's collision geoms: hidden from the camera (its visuals show instead).
COLLISION_GROUP = 3


@dataclass(frozen=True)
class ServoConfig:
    """Position-servo gains and limits of the robot's actuators (SI units)."""

    base_linear_kp_n_per_m: float = 40000.0
    base_yaw_kp_nm_per_rad: float = 20000.0
    arm_kp_nm_per_rad: float = 1500.0
    wrist_kp_nm_per_rad: float = 400.0
    damping_ratio: float = 1.0
    arm_armature_kg_m2: float = 0.05
    finger_kp_n_per_m: float = 800.0
    finger_force_limit_n: float = 25.0
    finger_friction: float = 1.5

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"ServoConfig.{name} ({value!r}) must be a positive number")


@dataclass(frozen=True)
class SceneConfig:
    """What the kitchen model is built with."""

    timestep_s: float = 0.002
    camera_fovy_deg: float = 53.0
    servos: ServoConfig = ServoConfig()
    # Where the head camera sits on the robot (the URDF's defaults unless set).
    head: HeadMount = field(default_factory=HeadMount)

    def __post_init__(self) -> None:
        if not (0.0 < self.timestep_s <= 0.01):
            raise ValueError(f"SceneConfig.timestep_s ({self.timestep_s!r}) must be in (0, 0.01]")
        if not (10.0 <= self.camera_fovy_deg <= 150.0):
            raise ValueError(
                f"SceneConfig.camera_fovy_deg ({self.camera_fovy_deg!r}) must be in [10, 150]"
            )


def _kitchen_spec() -> mujoco.MjSpec:
    text = (importlib.resources.files("rt_ros.sim") / "assets" / KITCHEN_MJCF).read_text()
    return mujoco.MjSpec.from_string(text)


def _robot_spec(servos: ServoConfig, head: HeadMount) -> mujoco.MjSpec:
    """The URDF as compiled by MuJoCo, with collision bits, friction and gravity compensation."""
    robot = mujoco.MjSpec.from_string(rd.robot_urdf(head=head))
    finger_bodies = set(rd.FINGER_LINKS)
    for geom in robot.geoms:
        if geom.contype == 0 and geom.conaffinity == 0:
            continue  # a visual geom (MuJoCo's URDF import gives them no collision bits)
        geom.contype = ROBOT_CONTYPE
        geom.conaffinity = ROBOT_CONAFFINITY
        geom.group = COLLISION_GROUP
        if geom.parent.name in finger_bodies:
            # Torsional friction on the pads: a grasped object neither slips nor spins.
            geom.condim = 4
            geom.friction = [servos.finger_friction, 0.01, 0.0001]
    base_chain = {rd.ROOT_LINK, "base_x_link", "base_y_link"}
    for body in robot.bodies:
        # The arm carries its own weight (as a real arm's controller does), so the servos only
        # have to follow; the base bodies ride on joints that gravity does not load.
        if body.name and body.name not in base_chain:
            body.gravcomp = 1.0
    for name in rd.ARM_JOINTS:
        robot.joint(name).armature = servos.arm_armature_kg_m2
    return robot


def _add_servo(
    spec: mujoco.MjSpec,
    joint: str,
    kp: float,
    damping_ratio: float,
    force_limit: float | None,
) -> None:
    actuator = spec.add_actuator(name=joint, target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
    actuator.set_to_position(kp=kp, dampratio=damping_ratio)
    actuator.ctrlrange = spec.joint(joint).range
    actuator.ctrllimited = True
    if force_limit is not None:
        actuator.forcerange = [-force_limit, force_limit]
        actuator.forcelimited = True


def build_spec(config: SceneConfig | None = None) -> mujoco.MjSpec:
    """The kitchen with the robot attached at the origin, servos and head camera (uncompiled)."""
    config = config or SceneConfig()
    servos = config.servos
    scene = _kitchen_spec()
    scene.option.timestep = config.timestep_s
    mount = scene.worldbody.add_frame(name="robot_mount")
    # Attach under a prefix (MuJoCo warns about an empty one), then give the robot's elements
    # back their URDF names, which are what ROS, pinocchio and the rest of rt_ros use.
    scene.attach(_robot_spec(servos, config.head), frame=mount, prefix=_ATTACH_PREFIX)
    for elements in (scene.bodies, scene.joints, scene.geoms, scene.sites, scene.cameras):
        for element in elements:
            if element.name.startswith(_ATTACH_PREFIX):
                element.name = element.name.removeprefix(_ATTACH_PREFIX)
    limits = rd.joint_limits()
    gains = {
        rd.BASE_JOINTS[0]: servos.base_linear_kp_n_per_m,
        rd.BASE_JOINTS[1]: servos.base_linear_kp_n_per_m,
        rd.BASE_JOINTS[2]: servos.base_yaw_kp_nm_per_rad,
    }
    for index, joint in enumerate(rd.ARM_JOINTS):
        gains[joint] = servos.arm_kp_nm_per_rad if index < 4 else servos.wrist_kp_nm_per_rad
    for joint, kp in gains.items():
        _add_servo(scene, joint, kp, servos.damping_ratio, limits[joint].effort)
    for joint in rd.GRIPPER_JOINTS:
        _add_servo(
            scene,
            joint,
            servos.finger_kp_n_per_m,
            servos.damping_ratio,
            servos.finger_force_limit_n,
        )
    optical = scene.body(rd.HEAD_CAMERA_OPTICAL_FRAME)
    # A MuJoCo camera looks along its -z with y up: the optical frame turned by pi about x.
    optical.add_camera(name=HEAD_CAMERA, quat=[0.0, 1.0, 0.0, 0.0], fovy=config.camera_fovy_deg)
    return scene


@functools.lru_cache(maxsize=4)
def _compiled_model(config: SceneConfig) -> mujoco.MjModel:
    return build_spec(config).compile()


def build_model(config: SceneConfig | None = None) -> mujoco.MjModel:
    """A fresh copy of the compiled kitchen model (compiled once per config, then copied)."""
    return copy.copy(_compiled_model(config or SceneConfig()))


def counter_top_height_m(model: mujoco.MjModel) -> float:
    """Height of the counter's top surface in the world frame."""
    geom = model.geom(COUNTER_TOP_GEOM)
    body = model.body(COUNTER_BODY)
    return float(body.pos[2] + geom.pos[2] + geom.size[2])
