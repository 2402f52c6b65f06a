"""RT-1 actions -> arm, base, gripper and mode commands for one control period (no ROS here).

An RT-1 action is a displacement over one control tick: world_vector in metres, rotation_delta as
roll/pitch/yaw (or axis-angle) increments, base displacement and yaw over the tick. Commands are
the velocities that cover those displacements in one control period. Mode gating as DESIGN.md
says: `arm` zeroes the base, `base` zeroes the arm, `terminate` stops both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from rt_ros.nodes.commands import ArmCommand, BaseCommand, Mode
from rt_ros.runtime.action import Action
from rt_ros.runtime.action_space import ActionSpace
from rt_ros.runtime.errors import ConfigError

_AXES = ("x", "y", "z")


@dataclass(frozen=True)
class PolicyCommands:
    """What the policy node publishes for one action."""

    arm: ArmCommand
    base: BaseCommand
    # +1 closes, -1 opens, whatever the profile's sign; None: hold (a stop never drops an object).
    gripper_closedness: float | None
    mode: Mode


def stop_commands(stamp_s: float, mode: Mode = Mode.ARM) -> PolicyCommands:
    """Zero motion, the gripper left as it is, stamped `stamp_s`."""
    return PolicyCommands(ArmCommand(stamp_s=stamp_s), BaseCommand(stamp_s=stamp_s), None, mode)


def _angular_displacement(action: Action, space: ActionSpace) -> np.ndarray:
    """The arm's rotation over one tick as a rotation vector (rad)."""
    angles = np.array([action.role(f"arm.angular.{axis}") for axis in _AXES])
    if space.rotation == "axis_angle":
        return angles
    # rpy_delta: roll, pitch, yaw increments about the fixed x, y, z axes.
    return Rotation.from_euler("xyz", angles).as_rotvec()


def action_to_commands(
    action: Action, space: ActionSpace, control_period_s: float, stamp_s: float
) -> PolicyCommands:
    """Velocities that realise the action's displacements over `control_period_s`, mode-gated."""
    if not control_period_s > 0:
        raise ConfigError(f"control_period_s must be > 0, got {control_period_s}")
    label = action.mode
    mode = Mode(label) if label is not None else Mode.ARM
    linear_mps = tuple(action.role(f"arm.linear.{axis}") / control_period_s for axis in _AXES)
    angular_rps = tuple(float(v) / control_period_s for v in _angular_displacement(action, space))
    base_linear_mps = (
        action.role("base.linear.x") / control_period_s,
        action.role("base.linear.y") / control_period_s,
        0.0,
    )
    base_angular_rps = (0.0, 0.0, action.role("base.angular.z") / control_period_s)
    arm = ArmCommand(linear_mps, angular_rps, stamp_s)
    base = BaseCommand(base_linear_mps, base_angular_rps, stamp_s)
    # Profiles without a mode dimension drive arm and base together.
    gate_arm = mode in (Mode.BASE, Mode.TERMINATE)
    gate_base = mode in (Mode.ARM, Mode.TERMINATE) and label is not None
    gripper = action.role("gripper") * space.gripper_close_sign
    return PolicyCommands(
        ArmCommand(stamp_s=stamp_s) if gate_arm else arm,
        BaseCommand(stamp_s=stamp_s) if gate_base else base,
        gripper,
        mode,
    )
