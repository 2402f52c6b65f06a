"""Knock X over: tip a standing can onto its side."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rt_ros.sim.objects import CANS
from rt_ros.sim.tasks.base import Task
from rt_ros.sim.tasks.layout import LayoutConfig, lay_out_one_target

if TYPE_CHECKING:
    from rt_ros.sim.world import SimWorld


@dataclass(frozen=True)
class KnockOverTask(Task):
    """Success: the can's axis leans more than `fallen_tilt_rad` from the vertical."""

    target: str = CANS[0]

    family: ClassVar[str] = "knock_over"
    templates: ClassVar[tuple[str, ...]] = (
        "knock {object} over",
        "knock over the {object}",
        "knock the {object} over",
        "tip over the {object}",
        "push the {object} over",
        "topple the {object}",
    )
    fallen_tilt_rad: ClassVar[float] = math.radians(60.0)
    layout: ClassVar[LayoutConfig] = LayoutConfig()

    @classmethod
    def sample(cls, rng: np.random.Generator, world: SimWorld) -> KnockOverTask:
        target, instruction = lay_out_one_target(rng, world, cls.layout, CANS, cls.templates)
        return cls(instruction=instruction, target=target)

    def success(self, world: SimWorld) -> bool:
        return world.object_tilt_rad(self.target) > self.fallen_tilt_rad
