"""Place X upright: stand a can that lies on its side back on its base."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import mujoco
import numpy as np

from rt_ros.sim.objects import CANS, OBJECTS
from rt_ros.sim.tasks.base import Task, cabinet_side, choose
from rt_ros.sim.tasks.layout import LayoutConfig, add_distractors, new_layout

if TYPE_CHECKING:
    from rt_ros.sim.world import SimWorld


def lying_quaternion(axis_yaw_rad: float) -> np.ndarray:
    """Orientation (w, x, y, z) of a can lying with its axis horizontal at `axis_yaw_rad`."""
    # Turn the can's z axis down onto world x, then about the vertical by the yaw.
    tip = np.empty(4)
    mujoco.mju_axisAngle2Quat(tip, np.array([0.0, 1.0, 0.0]), math.pi / 2)
    turn = np.empty(4)
    mujoco.mju_axisAngle2Quat(turn, np.array([0.0, 0.0, 1.0]), axis_yaw_rad)
    quat = np.empty(4)
    mujoco.mju_mulQuat(quat, turn, tip)
    return quat


@dataclass(frozen=True)
class PlaceUprightTask(Task):
    """Success: the can's axis is within `upright_tilt_rad` of vertical, it stands on the
    counter (origin within `height_tolerance_m` of its standing rest height) and the robot has
    let go of it. The layout lays it down with its axis within `max_axis_yaw_rad` of the
    robot's forward direction."""

    target: str = CANS[0]

    family: ClassVar[str] = "place_upright"
    templates: ClassVar[tuple[str, ...]] = (
        "place {object} upright",
        "stand the {object} up",
        "put the {object} upright",
        "set the {object} upright",
        "stand the {object} upright",
        "turn the {object} upright",
    )
    held_out_templates: ClassVar[tuple[int, ...]] = (5,)
    # (target, side of the cabinet)
    held_out_combinations: ClassVar[frozenset] = frozenset({("green_can", "right")})
    upright_tilt_rad: ClassVar[float] = math.radians(15.0)
    height_tolerance_m: ClassVar[float] = 0.01
    max_axis_yaw_rad: ClassVar[float] = math.radians(40.0)
    # A lying can needs room around it: its footprint is its length, not its radius.
    lying_gap_m: ClassVar[float] = 0.07
    layout: ClassVar[LayoutConfig] = LayoutConfig()

    @classmethod
    def sample(
        cls, rng: np.random.Generator, world: SimWorld, templates: Sequence[str]
    ) -> PlaceUprightTask:
        target = choose(rng, CANS)
        obj = OBJECTS[target]
        layout = new_layout(rng, world, cls.layout)
        xy = layout.place(target, rng, gap_m=cls.lying_gap_m)
        axis_yaw = float(rng.uniform(-cls.max_axis_yaw_rad, cls.max_axis_yaw_rad))
        world_xy = world.to_world([xy[0], xy[1], 0.0])
        height = world.counter_height_m + obj.lying_height_m + 0.001
        world.set_object_pose(
            target, [world_xy[0], world_xy[1], height], lying_quaternion(axis_yaw)
        )
        add_distractors(rng, world, layout, exclude=[target])
        words = choose(rng, obj.words)
        return cls(instruction=choose(rng, templates).format(object=words), target=target)

    def combination(self, world: SimWorld) -> tuple[str, str]:
        return (self.target, cabinet_side(world))

    def success(self, world: SimWorld) -> bool:
        obj = OBJECTS[self.target]
        upright = world.object_tilt_rad(self.target) <= self.upright_tilt_rad
        height = abs(world.object_height_m(self.target) - obj.rest_height_m)
        return (
            upright and height <= self.height_tolerance_m and not world.robot_touching(self.target)
        )
