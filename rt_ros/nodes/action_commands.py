"""RT-1 actions -> the arm, base, gripper and mode commands the policy node publishes (no ROS).

The motion an action asks for (velocities over one control period, mode-gated) comes from
`rt_ros.runtime.action_motion`, which the simulator's episode runner shares.
"""

from __future__ import annotations

from dataclasses import dataclass

from rt_ros.nodes.commands import ArmCommand, BaseCommand, Mode
from rt_ros.runtime.action import Action
from rt_ros.runtime.action_motion import action_to_motion
from rt_ros.runtime.action_space import ActionSpace


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


def action_to_commands(
    action: Action, space: ActionSpace, control_period_s: float, stamp_s: float
) -> PolicyCommands:
    """Velocities that realise the action's displacements over `control_period_s`, mode-gated."""
    motion = action_to_motion(action, space, control_period_s)
    arm, base = motion.arm_twist.tolist(), motion.base_twist.tolist()
    return PolicyCommands(
        ArmCommand(tuple(arm[:3]), tuple(arm[3:]), stamp_s),
        BaseCommand((base[0], base[1], 0.0), (0.0, 0.0, base[2]), stamp_s),
        motion.gripper_closedness,
        Mode(motion.mode),
    )
