"""An RT-1 action as the motion it asks for over one control tick (no ROS, no simulator).

One action covers one control tick of `control_period_s`: the arm's linear values are the end
effector's displacement (m) during the tick in the robot base frame, its angular values the
rotation increment (rad) during the tick (roll/pitch/yaw about fixed axes for `rpy_delta`
profiles, a rotation vector for `axis_angle` ones), the base values the base's displacement and
turn during the tick, and the gripper value an absolute closedness in the profile's sign. The
motion is the constant velocities that cover those displacements in one period, gated by mode as
DESIGN.md says: `arm` zeroes the base, `base` zeroes the arm, `terminate` stops both. Profiles
without a mode dimension drive arm and base together. The policy node and the simulator's
episode runner both use this, so a demonstration and a deployed policy mean the same motion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_space import ActionSpace
from rt_ros.runtime.errors import ConfigError

ARM_LINEAR_ROLES = ("arm.linear.x", "arm.linear.y", "arm.linear.z")
ARM_ANGULAR_ROLES = ("arm.angular.x", "arm.angular.y", "arm.angular.z")
BASE_ROLES = ("base.linear.x", "base.linear.y", "base.angular.z")
# Roll, pitch, yaw about the fixed base axes x, then y, then z: R = Rz(yaw) Ry(pitch) Rx(roll).
RPY_SEQUENCE = "xyz"
MODES = ("arm", "base", "terminate")


def rpy_to_rotation_vector(rpy: np.ndarray) -> np.ndarray:
    """A roll/pitch/yaw increment (fixed axes) as the rotation vector of the same rotation."""
    return Rotation.from_euler(RPY_SEQUENCE, rpy).as_rotvec()


def rotation_vector_to_rpy(rotation_vector: np.ndarray) -> np.ndarray:
    """A rotation vector as roll/pitch/yaw about fixed axes (the inverse of the above)."""
    return Rotation.from_rotvec(rotation_vector).as_euler(RPY_SEQUENCE)


@dataclass(frozen=True)
class Motion:
    """Velocities held for one control tick, and what the policy said about the episode."""

    arm_twist: np.ndarray  # [6]: end-effector linear m/s then angular rad/s, base frame
    base_twist: np.ndarray  # [3]: base vx, vy m/s and yaw rate rad/s, base frame
    gripper_closedness: float  # +1 closes, -1 opens, whatever the profile's sign
    mode: str  # arm | base | terminate

    @property
    def terminate(self) -> bool:
        return self.mode == "terminate"


def action_to_motion(action: Action, space: ActionSpace, control_period_s: float) -> Motion:
    """The mode-gated velocities that realise `action` over `control_period_s`."""
    if not (math.isfinite(control_period_s) and control_period_s > 0):
        raise ConfigError(f"control_period_s must be a finite number > 0, got {control_period_s}")
    label = action.mode
    if label is not None and label not in MODES:
        raise ConfigError(f"action space {space.name}: unknown mode label {label!r}")
    linear = np.array([action.role(role) for role in ARM_LINEAR_ROLES])
    angular = np.array([action.role(role) for role in ARM_ANGULAR_ROLES])
    if space.rotation == "rpy_delta":
        angular = rpy_to_rotation_vector(angular)
    arm = np.concatenate((linear, angular)) / control_period_s
    base = np.array([action.role(role) for role in BASE_ROLES]) / control_period_s
    gripper = float(space.gripper_close_sign * action.role("gripper"))
    mode = label or "arm"
    if label in ("base", "terminate"):
        arm = np.zeros(6)
    if label in ("arm", "terminate"):
        base = np.zeros(3)
    return Motion(arm, base, gripper, mode)
