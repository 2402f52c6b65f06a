"""Knock X over: tip a standing can onto its side."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rt_ros.sim.objects import CANS
from rt_ros.sim.tasks.base import Task, cabinet_side
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
    held_out_templates: ClassVar[tuple[int, ...]] = (5,)
    # (target, side of the cabinet)
    held_out_combinations: ClassVar[frozenset] = frozenset({("red_can", "left")})
    fallen_tilt_rad: ClassVar[float] = math.radians(60.0)
    layout: ClassVar[LayoutConfig] = LayoutConfig()

    @classmethod
    def sample(
        cls, rng: np.random.Generator, world: SimWorld, templates: Sequence[str]
    ) -> KnockOverTask:
        target, instruction = lay_out_one_target(rng, world, cls.layout, CANS, templates)
        return cls(instruction=instruction, target=target)

    def combination(self, world: SimWorld) -> tuple[str, str]:
        return (self.target, cabinet_side(world))

    def success(self, world: SimWorld) -> bool:
        return world.object_tilt_rad(self.target) > self.fallen_tilt_rad
