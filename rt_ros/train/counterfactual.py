"""Counterfactual labels: what the scripted expert would do at the states of a demonstration had
its instruction named another object on the counter.

Demonstrations alone let a policy ignore which object its instruction names: every layout shows
the expert going to *some* object, and the frames usually suggest one. The shipped model does
exactly that (README, Learning): at an episode's first tick, naming another can on the counter
moved its expected first action by 0.35 bins on average where the expert's moved by 1.75.
Counterfactual episodes break that shortcut: the same frames, the instruction worded for another
object with the same template, and the expert's action for that object at every state. They
cover the approach, from the first tick until the demonstrating expert first touches its own
target, which is where the choice of object is made.

Families whose instruction names the object to act on among several alike ones on the counter
have them: `pick` (anything graspable), `knock_over` (cans) and `move_near` (the object to move;
the anchor keeps its words). An alternative must be present, standing, not named otherwise by
the instruction, and in the same split as the demonstration (a held-out object/layout
combination stays held out).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import string
from dataclasses import dataclass

import numpy as np

from rt_ros.runtime.action import Action
from rt_ros.sim.expert import OPEN, Intent, ScriptedExpert
from rt_ros.sim.objects import CANS, GRASPABLE, OBJECTS
from rt_ros.sim.tasks.base import Task, choose
from rt_ros.sim.world import SimWorld, WorldState

# Family -> the objects its instruction may name as the object to act on (the task's `target`).
COUNTERFACTUAL_FAMILIES: dict[str, tuple[str, ...]] = {
    "pick": GRASPABLE,
    "knock_over": CANS,
    "move_near": GRASPABLE,
}
# Template placeholder -> the task field whose object it names.
_PLACEHOLDER_FIELDS = {"object": "target", "target": "target", "anchor": "anchor"}
# An object leaning more than this is lying, not a target these families lay out.
STANDING_TILT_RAD = math.radians(20.0)


def check_counterfactual_family(family: str) -> None:
    """Raise ValueError naming the families that have counterfactual labels."""
    if family not in COUNTERFACTUAL_FAMILIES:
        raise ValueError(
            f"counterfactual labels exist for {', '.join(COUNTERFACTUAL_FAMILIES)}, "
            f"not {family!r} (its instruction does not name one object among alike ones)"
        )


def wording_rng(seed: int) -> np.random.Generator:
    """The random stream that words a layout's alternatives: the same for a seed in collection
    and in `rt-ros grounding`."""
    return np.random.default_rng([seed, 11])


def instruction_wording(task: Task, split: str) -> tuple[str, dict[str, str]]:
    """The template (of `split`) and the word per placeholder that worded `task.instruction`."""
    for template in type(task).templates_for(split):
        placeholders = [name for _, name, _, _ in string.Formatter().parse(template) if name]
        options = [
            OBJECTS[getattr(task, _PLACEHOLDER_FIELDS[name])].words for name in placeholders
        ]
        for words in itertools.product(*options):
            chosen = dict(zip(placeholders, words, strict=True))
            if template.format(**chosen) == task.instruction:
                return template, chosen
    raise ValueError(
        f"{task.family}: no {split} template words {task.instruction!r} for {task.target}"
    )


def alternative_tasks(
    task: Task, world: SimWorld, split: str, rng: np.random.Generator
) -> list[Task]:
    """The same task for every other candidate object standing on the counter (not one the
    instruction names otherwise), worded with the same template and the same other words, in
    the same split; `world` must hold the layout `task` was sampled in."""
    check_counterfactual_family(task.family)
    template, words = instruction_wording(task, split)
    named = {
        getattr(task, field) for field in _PLACEHOLDER_FIELDS.values() if hasattr(task, field)
    }
    alternatives = []
    for name in COUNTERFACTUAL_FAMILIES[task.family]:
        if name in named or world.is_parked(name):
            continue
        if world.object_tilt_rad(name) > STANDING_TILT_RAD:
            continue
        reworded = {
            placeholder: choose(rng, OBJECTS[name].words)
            if _PLACEHOLDER_FIELDS[placeholder] == "target"
            else word
            for placeholder, word in words.items()
        }
        alternative = dataclasses.replace(
            task, target=name, instruction=template.format(**reworded)
        )
        if alternative.in_split(world, split):
            alternatives.append(alternative)
    return alternatives


@dataclass(frozen=True)
class LabelledState:
    """One visited state: its frame, the robot's state, what ran, and each alternative's label."""

    rgb: np.ndarray
    state: WorldState
    executed: Action
    labels: tuple[Action, ...]


class CounterfactualDriver:
    """The scripted expert drives its own task; an expert per alternative target labels each
    state until the driving expert first touches its target, an alternative's expert
    terminates (its plan given up) or `max_ticks` states are labelled; the episode then ends
    there when `max_ticks` is given. `states` and `alternatives` hold the result."""

    def __init__(
        self,
        expert: ScriptedExpert,
        split: str,
        rng: np.random.Generator,
        max_ticks: int | None = None,
    ) -> None:
        if max_ticks is not None and max_ticks < 1:
            raise ValueError(f"max_ticks ({max_ticks!r}) must be >= 1")
        self.expert = expert
        self.space = expert.space
        self._split = split
        self._rng = rng
        self._max_ticks = max_ticks
        self._task: Task | None = None
        self._labellers: list[ScriptedExpert] = []
        self.alternatives: list[Task] = []
        self.states: list[LabelledState] = []
        self._started = False
        self._labelling = False

    @property
    def task(self) -> Task:
        if self._task is None:
            raise RuntimeError("CounterfactualDriver: no task before reset(task)")
        return self._task

    def reset(self, task: Task) -> None:
        self._task = task
        self.expert.reset(task)
        self.alternatives, self._labellers, self.states = [], [], []
        self._started = self._labelling = False

    def __call__(self, world: SimWorld) -> Action:
        if self._task is None:
            raise RuntimeError("CounterfactualDriver: call reset(task) before the first action")
        if not self._started:
            # First tick: the layout is in place, so the alternatives can be read from it.
            self._started = True
            self.alternatives = alternative_tasks(self._task, world, self._split, self._rng)
            for alternative in self.alternatives:
                labeller = ScriptedExpert(self.space, self.expert.config)
                labeller.reset(alternative)
                self._labellers.append(labeller)
            self._labelling = bool(self._labellers)
        action = self.expert(world)
        if self._labelling and world.robot_touching(self._task.target):
            self._labelling = False
        if self._labelling:
            labels = tuple(labeller(world) for labeller in self._labellers)
            if any(label.mode == "terminate" for label in labels):
                self._labelling = False
            else:
                self.states.append(LabelledState(world.render(), world.state(), action, labels))
                if self._max_ticks is not None and len(self.states) >= self._max_ticks:
                    self._labelling = False
        if self._max_ticks is not None and not self._labelling:
            # Nothing more to label: end the episode (the demonstration is not recorded).
            return self.expert.encode(Intent(np.zeros(3), np.zeros(3), OPEN, mode="terminate"))
        return action
