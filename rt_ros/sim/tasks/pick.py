"""Pick X: lift a graspable object off the counter and hold it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rt_ros.sim.objects import GRASPABLE, OBJECTS
from rt_ros.sim.tasks.base import Task
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
    lift_height_m: ClassVar[float] = 0.05
    layout: ClassVar[LayoutConfig] = LayoutConfig()

    @classmethod
    def sample(cls, rng: np.random.Generator, world: SimWorld) -> PickTask:
        target, instruction = lay_out_one_target(rng, world, cls.layout, GRASPABLE, cls.templates)
        return cls(instruction=instruction, target=target)

    def success(self, world: SimWorld) -> bool:
        lifted = world.object_height_m(self.target) - OBJECTS[self.target].rest_height_m
        return lifted >= self.lift_height_m and world.fingers_touching(self.target) > 0
