"""The Task interface: a layout sampled from a seed, an instruction, success from sim state.

Every family holds some of its wording and some of its object/layout combinations out of the
`seen` split, so that evaluation can measure what training never showed: `unseen_paraphrase`
words the instruction with a held-out template, `unseen_combination` lays out a held-out
combination (an object with the cabinet on a given side, or a pair of objects). `any` draws from
everything, as every seed always did.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from rt_ros.sim.world import SimWorld


SPLITS = ("any", "seen", "unseen_paraphrase", "unseen_combination")


def choose(rng: np.random.Generator, options: Sequence[str]) -> str:
    """One of `options`, uniformly."""
    return options[int(rng.integers(len(options)))]


def cabinet_side(world: SimWorld) -> str:
    """Which side of the robot the drawer cabinet stands on: `left` (+y) or `right`."""
    return "left" if world.to_base(world.cabinet_position())[1] > 0 else "right"


@dataclass(frozen=True)
class Task(ABC):
    """One episode of a skill family: what to do (`instruction`) and how to tell it is done.

    A subclass names its `family`, lists its instruction `templates` (paraphrases; the first is
    RT-1's wording), which of them and which `combination()` keys are held out of the `seen`
    split, and holds the episode's parameters (target objects) as fields.
    """

    instruction: str

    family: ClassVar[str]
    templates: ClassVar[tuple[str, ...]]
    # Templates (by index) kept out of the seen split: only unseen_paraphrase uses them.
    held_out_templates: ClassVar[tuple[int, ...]]
    # combination() keys kept out of the seen split: only unseen_combination lays them out.
    held_out_combinations: ClassVar[frozenset[tuple[Hashable, ...]]]
    # Control ticks an episode of this family may take before it counts as failed.
    max_steps: ClassVar[int] = 90

    @classmethod
    @abstractmethod
    def sample(cls, rng: np.random.Generator, world: SimWorld, templates: Sequence[str]) -> Task:
        """Choose the episode's targets, lay out the scene in `world` and word the instruction
        with one of `templates` (a subset of `cls.templates`, chosen by the split).

        Called by SimWorld.reset after the robot is home and every object is parked.
        """

    @abstractmethod
    def combination(self, world: SimWorld) -> tuple[Hashable, ...]:
        """What makes this layout's object/scene combination (for the held-out split)."""

    @classmethod
    def templates_for(cls, split: str) -> tuple[str, ...]:
        """The instruction templates a split words its instructions with."""
        check_split(split)
        if split == "any":
            return cls.templates
        held_out = split == "unseen_paraphrase"
        return tuple(
            template
            for index, template in enumerate(cls.templates)
            if (index in cls.held_out_templates) == held_out
        )

    def in_split(self, world: SimWorld, split: str) -> bool:
        """Whether this layout belongs to `split` (its wording is chosen by templates_for)."""
        check_split(split)
        if split == "any":
            return True
        held_out = self.combination(world) in self.held_out_combinations
        return held_out == (split == "unseen_combination")

    @abstractmethod
    def success(self, world: SimWorld) -> bool:
        """Whether the instruction is fulfilled in the world's current state."""


def check_split(split: str) -> None:
    """Raise ValueError naming the splits for an unknown one."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
