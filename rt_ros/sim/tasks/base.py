"""The Task interface: a layout sampled from a seed, an instruction, success from sim state."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from rt_ros.sim.world import SimWorld


def choose(rng: np.random.Generator, options: Sequence[str]) -> str:
    """One of `options`, uniformly."""
    return options[int(rng.integers(len(options)))]


@dataclass(frozen=True)
class Task(ABC):
    """One episode of a skill family: what to do (`instruction`) and how to tell it is done.

    A subclass names its `family`, lists its instruction `templates` (paraphrases; the first is
    RT-1's wording) and holds the episode's parameters (target objects) as fields.
    """

    instruction: str

    family: ClassVar[str]
    templates: ClassVar[tuple[str, ...]]
    # Control ticks an episode of this family may take before it counts as failed.
    max_steps: ClassVar[int] = 90

    @classmethod
    @abstractmethod
    def sample(cls, rng: np.random.Generator, world: SimWorld) -> Task:
        """Choose the episode's targets, lay out the scene in `world` and word the instruction.

        Called by SimWorld.reset after the robot is home and every object is parked.
        """

    @abstractmethod
    def success(self, world: SimWorld) -> bool:
        """Whether the instruction is fulfilled in the world's current state."""
