"""Random layouts on the counter: object positions that keep apart and clear of the cabinet."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rt_ros.sim.objects import OBJECTS
from rt_ros.sim.tasks.base import choose

if TYPE_CHECKING:
    from rt_ros.sim.world import SimWorld

# Footprint of the drawer cabinet around its centre (m, base frame), and how far in front of it
# (towards the robot) the open drawer and the hand that pulls it need the counter free.
CABINET_HALF_X_M = 0.12
CABINET_HALF_Y_M = 0.14
CABINET_HEIGHT_M = 0.15
DRAWER_CLEARANCE_X_M = 0.26


class LayoutError(RuntimeError):
    """No layout satisfied the constraints within the attempts allowed."""


@dataclass(frozen=True)
class LayoutConfig:
    """Where objects may stand (base frame, m) and how far apart."""

    x_range_m: tuple[float, float] = (0.48, 0.74)
    y_range_m: tuple[float, float] = (-0.27, 0.27)
    # Free counter between two objects' footprints.
    min_gap_m: float = 0.05
    # Drawer cabinet centre: x range and |y| range (either side of the robot).
    cabinet_x_range_m: tuple[float, float] = (0.73, 0.78)
    cabinet_abs_y_range_m: tuple[float, float] = (0.36, 0.42)
    # Objects besides the task's own, drawn from the unused ones.
    distractors_range: tuple[int, int] = (1, 3)
    attempts: int = 500

    def __post_init__(self) -> None:
        for name in ("x_range_m", "y_range_m", "cabinet_x_range_m", "cabinet_abs_y_range_m"):
            low, high = getattr(self, name)
            if not low <= high:
                raise ValueError(f"LayoutConfig.{name} ({(low, high)!r}) must be (low, high)")
        low, high = self.distractors_range
        if not 0 <= low <= high:
            raise ValueError(
                f"LayoutConfig.distractors_range ({self.distractors_range!r}) "
                "must be 0 <= low <= high"
            )


@dataclass
class Layout:
    """Footprints placed so far (base frame), for rejection sampling of the next one."""

    config: LayoutConfig
    cabinet_xy: np.ndarray
    placed: dict[str, np.ndarray]

    def _clear_of_cabinet(self, xy: np.ndarray, radius: float) -> bool:
        # The cabinet plus the strip in front of it where the drawer slides out.
        low_x = self.cabinet_xy[0] - CABINET_HALF_X_M - DRAWER_CLEARANCE_X_M
        high_x = self.cabinet_xy[0] + CABINET_HALF_X_M
        low_y = self.cabinet_xy[1] - CABINET_HALF_Y_M
        high_y = self.cabinet_xy[1] + CABINET_HALF_Y_M
        nearest = np.array([np.clip(xy[0], low_x, high_x), np.clip(xy[1], low_y, high_y)])
        return float(np.linalg.norm(xy - nearest)) >= radius + self.config.min_gap_m

    def is_free(self, xy: np.ndarray, radius: float, gap_m: float | None = None) -> bool:
        """Whether a footprint of `radius` at `xy` keeps the gap to everything placed."""
        gap = self.config.min_gap_m if gap_m is None else gap_m
        if not self._clear_of_cabinet(xy, radius):
            return False
        return all(
            float(np.linalg.norm(xy - other)) >= radius + OBJECTS[name].footprint_radius_m + gap
            for name, other in self.placed.items()
        )

    def sample_free(
        self, rng: np.random.Generator, radius: float, gap_m: float | None = None
    ) -> np.ndarray:
        """A uniformly drawn free position in the object area; LayoutError if none is found."""
        config = self.config
        for _ in range(config.attempts):
            xy = np.array([rng.uniform(*config.x_range_m), rng.uniform(*config.y_range_m)])
            if self.is_free(xy, radius, gap_m):
                return xy
        raise LayoutError(f"no free place of radius {radius} m after {config.attempts} attempts")

    def place(self, name: str, rng: np.random.Generator, gap_m: float | None = None) -> np.ndarray:
        """Draw a free position for an object and record it."""
        xy = self.sample_free(rng, OBJECTS[name].footprint_radius_m, gap_m)
        self.placed[name] = xy
        return xy


def new_layout(rng: np.random.Generator, world: SimWorld, config: LayoutConfig) -> Layout:
    """Put the drawer cabinet on a random side of the counter and start an empty layout."""
    side = 1.0 if rng.random() < 0.5 else -1.0
    cabinet_xy = np.array(
        [
            rng.uniform(*config.cabinet_x_range_m),
            side * rng.uniform(*config.cabinet_abs_y_range_m),
        ]
    )
    world.set_cabinet_position(cabinet_xy)
    return Layout(config=config, cabinet_xy=cabinet_xy, placed={})


def random_yaw(rng: np.random.Generator) -> float:
    """A yaw about the vertical, uniform in [-pi, pi)."""
    return float(rng.uniform(-math.pi, math.pi))


def add_distractors(
    rng: np.random.Generator,
    world: SimWorld,
    layout: Layout,
    exclude: Sequence[str],
) -> list[str]:
    """Stand a random number of other objects upright at free places; returns their names."""
    unused = [name for name in OBJECTS if name not in exclude and name not in layout.placed]
    low, high = layout.config.distractors_range
    count = min(int(rng.integers(low, high + 1)), len(unused))
    chosen = [unused[i] for i in rng.permutation(len(unused))[:count]]
    for name in chosen:
        try:
            xy = layout.place(name, rng)
        except LayoutError:
            continue  # a crowded counter simply gets fewer distractors
        world.place_on_counter(name, xy, random_yaw(rng))
    return [name for name in chosen if name in layout.placed]


def lay_out_one_target(
    rng: np.random.Generator,
    world: SimWorld,
    config: LayoutConfig,
    candidates: Sequence[str],
    templates: Sequence[str],
) -> tuple[str, str]:
    """Choose a target among `candidates`, place it and distractors on the counter, and word an
    instruction from `templates` ({object}); returns (target, instruction)."""
    target = choose(rng, candidates)
    layout = new_layout(rng, world, config)
    world.place_on_counter(target, layout.place(target, rng), random_yaw(rng))
    add_distractors(rng, world, layout, exclude=[target])
    words = choose(rng, OBJECTS[target].words)
    return target, choose(rng, templates).format(object=words)
