"""Move X near Y: set one object down next to another."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rt_ros.sim.objects import GRASPABLE, OBJECTS
from rt_ros.sim.tasks.base import Task, choose
from rt_ros.sim.tasks.layout import LayoutConfig, add_distractors, new_layout, random_yaw

if TYPE_CHECKING:
    from rt_ros.sim.world import SimWorld


def footprint_gap_m(world: SimWorld, first: str, second: str) -> float:
    """Horizontal free distance between two objects' footprint circles (negative: overlap)."""
    delta = world.object_position(first)[:2] - world.object_position(second)[:2]
    radii = OBJECTS[first].footprint_radius_m + OBJECTS[second].footprint_radius_m
    return float(np.linalg.norm(delta)) - radii


@dataclass(frozen=True)
class MoveNearTask(Task):
    """Success: the footprints of `target` and `anchor` are at most `near_gap_m` apart, and
    `target` rests (no higher than `rest_tolerance_m` above its rest height, robot not touching).
    The layout starts them at least `start_gap_m` apart."""

    target: str = GRASPABLE[0]
    anchor: str = GRASPABLE[1]

    family: ClassVar[str] = "move_near"
    templates: ClassVar[tuple[str, ...]] = (
        "move {target} near {anchor}",
        "move the {target} near the {anchor}",
        "put the {target} next to the {anchor}",
        "bring the {target} close to the {anchor}",
        "place the {target} by the {anchor}",
        "set the {target} down near the {anchor}",
    )
    held_out_templates: ClassVar[tuple[int, ...]] = (5,)
    # (target, anchor)
    held_out_combinations: ClassVar[frozenset] = frozenset(
        {("apple", "red_can"), ("sponge", "bowl"), ("green_can", "blue_can")}
    )
    near_gap_m: ClassVar[float] = 0.06
    start_gap_m: ClassVar[float] = 0.15
    # Resting inside a bowl counts: its bottom lifts an object by about a centimetre.
    rest_tolerance_m: ClassVar[float] = 0.03
    layout: ClassVar[LayoutConfig] = LayoutConfig()

    @classmethod
    def sample(
        cls, rng: np.random.Generator, world: SimWorld, templates: Sequence[str]
    ) -> MoveNearTask:
        target = choose(rng, GRASPABLE)
        anchor = choose(rng, [name for name in OBJECTS if name != target])
        layout = new_layout(rng, world, cls.layout)
        world.place_on_counter(anchor, layout.place(anchor, rng), random_yaw(rng))
        world.place_on_counter(
            target, layout.place(target, rng, gap_m=cls.start_gap_m), random_yaw(rng)
        )
        add_distractors(rng, world, layout, exclude=[target, anchor])
        instruction = choose(rng, templates).format(
            target=choose(rng, OBJECTS[target].words), anchor=choose(rng, OBJECTS[anchor].words)
        )
        return cls(instruction=instruction, target=target, anchor=anchor)

    def combination(self, world: SimWorld) -> tuple[str, str]:
        return (self.target, self.anchor)

    def success(self, world: SimWorld) -> bool:
        near = footprint_gap_m(world, self.target, self.anchor) <= self.near_gap_m
        height = world.object_height_m(self.target) - OBJECTS[self.target].rest_height_m
        resting = height <= self.rest_tolerance_m and not world.robot_touching(self.target)
        return near and resting
