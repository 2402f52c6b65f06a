"""Decoded actions to simulator commands, by role, under the fixed per-tick contract.

One action covers one control tick of `control_period_s`: the arm's linear values are the end
effector's displacement (m) during the tick in the robot base frame, its angular values the
rotation increment (rad) during the tick (roll/pitch/yaw for `rpy_delta` profiles, a rotation
vector for `axis_angle` ones), the base values the base's displacement and turn during the tick,
and the gripper value an absolute closedness (profile sign: `gripper_close_sign`). Mode `arm`
zeroes the base, `base` zeroes the arm, `terminate` stops both; the gripper target always holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_space import ActionSpace

ARM_LINEAR_ROLES = ("arm.linear.x", "arm.linear.y", "arm.linear.z")
ARM_ANGULAR_ROLES = ("arm.angular.x", "arm.angular.y", "arm.angular.z")
BASE_ROLES = ("base.linear.x", "base.linear.y", "base.angular.z")
# Roll, pitch, yaw about the fixed base axes x, then y, then z: R = Rz(yaw) Ry(pitch) Rx(roll).
RPY_SEQUENCE = "xyz"


def rpy_to_rotation_vector(rpy: np.ndarray) -> np.ndarray:
    """A roll/pitch/yaw increment (fixed axes) as the rotation vector of the same rotation."""
    return Rotation.from_euler(RPY_SEQUENCE, rpy).as_rotvec()


def rotation_vector_to_rpy(rotation_vector: np.ndarray) -> np.ndarray:
    """A rotation vector as roll/pitch/yaw about fixed axes (the inverse of the above)."""
    return Rotation.from_rotvec(rotation_vector).as_euler(RPY_SEQUENCE)


@dataclass(frozen=True)
class SimCommand:
    """What SimWorld.apply takes, plus whether the policy ended the episode."""

    arm_twist: np.ndarray
    base_twist: np.ndarray
    gripper: float
    terminate: bool = False


def action_to_command(action: Action, space: ActionSpace, control_period_s: float) -> SimCommand:
    """Turn one decoded action of `space` into the twists held for one control tick."""
    if not (math.isfinite(control_period_s) and control_period_s > 0):
        raise ValueError(f"control_period_s ({control_period_s!r}) must be > 0")
    linear = np.array([action.role(role) for role in ARM_LINEAR_ROLES])
    angular = np.array([action.role(role) for role in ARM_ANGULAR_ROLES])
    if space.rotation == "rpy_delta":
        angular = rpy_to_rotation_vector(angular)
    arm = np.concatenate((linear, angular)) / control_period_s
    base = np.array([action.role(role) for role in BASE_ROLES]) / control_period_s
    gripper = space.gripper_close_sign * action.role("gripper")
    mode = action.mode
    if mode == "terminate":
        return SimCommand(np.zeros(6), np.zeros(3), gripper, terminate=True)
    if mode == "arm":
        base = np.zeros(3)
    elif mode == "base":
        arm = np.zeros(6)
    return SimCommand(arm, base, gripper)
