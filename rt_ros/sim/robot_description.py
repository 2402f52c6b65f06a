"""The robot description: the xacro under urdf/ expanded to one URDF string, and its names.

Every joint and frame name used by the simulator, the expert and the tests is defined here once;
the xacro file is the only source of the robot's kinematics.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from rt_ros.paths import share_dir

XACRO_FILE = "rt_mobile_manipulator.urdf.xacro"
ROBOT_NAME = "rt_mobile_manipulator"

ROOT_LINK = "odom"
BASE_LINK = "base_link"
# Holonomic base: prismatic x, prismatic y, revolute yaw (in that order) from ROOT_LINK.
BASE_JOINTS = ("base_x_joint", "base_y_joint", "base_yaw_joint")
ARM_JOINTS = tuple(f"arm_joint_{index}" for index in range(1, 8))
# Each finger joint is that finger's outward travel from closed (0 = fingers touching).
GRIPPER_JOINTS = ("gripper_left_finger_joint", "gripper_right_finger_joint")
FINGER_LINKS = ("gripper_left_finger_link", "gripper_right_finger_link")
ROBOT_JOINTS = BASE_JOINTS + ARM_JOINTS + GRIPPER_JOINTS

ARM_BASE_LINK = "arm_base_link"
GRIPPER_BASE_LINK = "gripper_base_link"
# Tool centre point between the fingers: z approach, y towards the left finger.
END_EFFECTOR_FRAME = "end_effector"
HEAD_CAMERA_LINK = "head_camera_link"
# ROS optical convention: z forward, x right, y down.
HEAD_CAMERA_OPTICAL_FRAME = "head_camera_optical_frame"


def urdf_dir() -> Path:
    """The folder holding the robot's xacro (share/rt_ros/urdf when installed)."""
    return share_dir() / "urdf"


def xacro_path() -> Path:
    """Path of the robot's xacro file."""
    return urdf_dir() / XACRO_FILE


@dataclass(frozen=True)
class HeadMount:
    """Where the head camera sits: the mast's height above the torso top (m) and the camera's
    pitch down from horizontal (rad); the xacro's arguments of the same names. None keeps the
    xacro's default."""

    mast_height_m: float | None = None
    camera_pitch_rad: float | None = None

    def __post_init__(self) -> None:
        if self.mast_height_m is not None and not 0.1 <= self.mast_height_m <= 1.5:
            raise ValueError(
                f"HeadMount.mast_height_m ({self.mast_height_m!r}) must be in [0.1, 1.5]"
            )
        if self.camera_pitch_rad is not None and not 0.0 <= self.camera_pitch_rad <= 1.5:
            raise ValueError(
                f"HeadMount.camera_pitch_rad ({self.camera_pitch_rad!r}) must be in [0, 1.5]"
            )

    def xacro_mappings(self) -> dict[str, str]:
        mappings = {}
        if self.mast_height_m is not None:
            mappings["head_mast_height"] = repr(float(self.mast_height_m))
        if self.camera_pitch_rad is not None:
            mappings["head_camera_pitch"] = repr(float(self.camera_pitch_rad))
        return mappings


@functools.lru_cache(maxsize=8)
def robot_urdf(fixed_to_world: bool = False, head: HeadMount = HeadMount()) -> str:
    """The robot's URDF, expanded from the xacro with the `xacro` package (cached per argument).

    `fixed_to_world` adds a `world` link fixed to `odom`, as Gazebo wants it; `head` places the
    head camera (the xacro's defaults unless set).
    """
    import xacro

    path = xacro_path()
    if not path.is_file():
        raise FileNotFoundError(f"robot description {path} does not exist")
    mappings = {"fixed_to_world": "true" if fixed_to_world else "false", **head.xacro_mappings()}
    document = xacro.process_file(str(path), mappings=mappings)
    return document.toprettyxml(indent="  ")


@dataclass(frozen=True)
class JointLimits:
    """A joint's limits as the URDF states them (m or rad, m/s or rad/s, N or N m)."""

    lower: float
    upper: float
    velocity: float
    effort: float


@functools.lru_cache(maxsize=1)
def joint_limits() -> dict[str, JointLimits]:
    """Limits of every non-fixed joint of the robot, read from its URDF."""
    limits = {}
    for joint in ET.fromstring(robot_urdf()).iter("joint"):
        limit = joint.find("limit")
        if joint.get("type") == "fixed" or limit is None:
            continue
        limits[joint.get("name")] = JointLimits(
            lower=float(limit.get("lower", "0")),
            upper=float(limit.get("upper", "0")),
            velocity=float(limit.get("velocity")),
            effort=float(limit.get("effort")),
        )
    return limits
