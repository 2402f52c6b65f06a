"""Pick X: lift a graspable object off the counter and hold it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rt_ros.sim.objects import GRASPABLE, OBJECTS
from rt_ros.sim.tasks.base import Task, cabinet_side
from rt_ros.sim.tasks.layout import LayoutConfig, lay_out_one_target

if TYPE_CHECKING:
    from rt_ros.sim.world import SimWorld


@dataclass(frozen=True)
class PickTask(Task):
    """Success: the object's origin is `lift_height_m` above its rest height and a finger
    touches it (held, not thrown)."""

    target: str = GRASPABLE[0]

    family: ClassVar[str] = "pick"
    templates: ClassVar[tuple[str, ...]] = (
        "pick {object}",
        "pick up the {object}",
        "grab the {object}",
        "lift the {object}",
        "pick the {object} up",
        "take the {object}",
    )
    held_out_templates: ClassVar[tuple[int, ...]] = (5,)
    # (target, side of the cabinet)
    held_out_combinations: ClassVar[frozenset] = frozenset(
        {("apple", "left"), ("blue_can", "right")}
    )
    lift_height_m: ClassVar[float] = 0.05
    layout: ClassVar[LayoutConfig] = LayoutConfig()

    @classmethod
    def sample(
        cls, rng: np.random.Generator, world: SimWorld, templates: Sequence[str]
    ) -> PickTask:
        target, instruction = lay_out_one_target(rng, world, cls.layout, GRASPABLE, templates)
        return cls(instruction=instruction, target=target)

    def combination(self, world: SimWorld) -> tuple[str, str]:
        return (self.target, cabinet_side(world))

    def success(self, world: SimWorld) -> bool:
        lifted = world.object_height_m(self.target) - OBJECTS[self.target].rest_height_m
        return lifted >= self.lift_height_m and world.fingers_touching(self.target) > 0
