"""Open / close the drawer of the cabinet on the counter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rt_ros.sim.tasks.base import Task, cabinet_side, choose
from rt_ros.sim.tasks.layout import LayoutConfig, add_distractors, new_layout

if TYPE_CHECKING:
    from rt_ros.sim.world import SimWorld


@dataclass(frozen=True)
class DrawerTask(Task):
    """Open (`open=True`) or close the drawer. Success: the drawer is out at least
    `open_min_m`, or in to at most `closed_max_m`. Layouts start an open task with the drawer
    in at most `closed_max_m / 2` and a close task with it out between `open_start_range_m`."""

    open: bool = True

    family: ClassVar[str] = "drawer"
    templates: ClassVar[tuple[str, ...]] = (
        "{verb} drawer",
        "{verb} the drawer",
        "{verb} the drawer on the counter",
    )
    held_out_templates: ClassVar[tuple[int, ...]] = (2,)
    # (open or close, side of the cabinet)
    held_out_combinations: ClassVar[frozenset] = frozenset({("close", "left")})
    open_verbs: ClassVar[tuple[str, ...]] = ("open", "pull open", "slide open")
    close_verbs: ClassVar[tuple[str, ...]] = ("close", "push shut", "shut")
    open_min_m: ClassVar[float] = 0.12
    closed_max_m: ClassVar[float] = 0.02
    open_start_range_m: ClassVar[tuple[float, float]] = (0.10, 0.17)
    layout: ClassVar[LayoutConfig] = LayoutConfig()

    @classmethod
    def sample(
        cls, rng: np.random.Generator, world: SimWorld, templates: Sequence[str]
    ) -> DrawerTask:
        opening = bool(rng.random() < 0.5)
        layout = new_layout(rng, world, cls.layout)
        if opening:
            world.set_drawer_opening(rng.uniform(0.0, cls.closed_max_m / 2))
        else:
            world.set_drawer_opening(rng.uniform(*cls.open_start_range_m))
        add_distractors(rng, world, layout, exclude=[])
        verb = choose(rng, cls.open_verbs if opening else cls.close_verbs)
        return cls(instruction=choose(rng, templates).format(verb=verb), open=opening)

    def combination(self, world: SimWorld) -> tuple[str, str]:
        return ("open" if self.open else "close", cabinet_side(world))

    def success(self, world: SimWorld) -> bool:
        opening = world.drawer_opening_m()
        return opening >= self.open_min_m if self.open else opening <= self.closed_max_m
