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

Two roles can be renamed. The *target* (the object acted on): families whose instruction names
it among several alike ones on the counter have it: `pick` (anything graspable), `knock_over`
(cans) and `move_near` (the object to move; the anchor keeps its words). The *anchor* (what the
object is put by; `move_near`, the target keeps its words): its choice is made while the object
is carried, so those labels cover the carry, from the first tick the target is held at the
expert's carry height until it is lowered or let go, with the ticks just before it as the
window's history; the expert for another anchor grasps and lifts exactly as the demonstrating
one does, so its labels are right there too. An alternative must be present, standing, not
named otherwise by the instruction, and in the same split as the demonstration (a held-out
object/layout combination stays held out).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import string
from collections import deque
from dataclasses import dataclass

import numpy as np

from rt_ros.runtime.action import Action
from rt_ros.sim.expert import OPEN, ExpertConfig, Intent, ScriptedExpert
from rt_ros.sim.objects import CANS, GRASPABLE, OBJECTS
from rt_ros.sim.tasks.base import Task, choose
from rt_ros.sim.world import SimWorld, WorldState

# The task field an alternative renames: the object acted on, or the one it is put by.
TARGET_ROLE = "target"
ANCHOR_ROLE = "anchor"
# Family -> the objects its instruction may name as the object to act on (the task's `target`).
COUNTERFACTUAL_FAMILIES: dict[str, tuple[str, ...]] = {
    "pick": GRASPABLE,
    "knock_over": CANS,
    "move_near": GRASPABLE,
}
# Family -> the objects its instruction may name as the one to put the target by (`anchor`).
ANCHOR_FAMILIES: dict[str, tuple[str, ...]] = {"move_near": tuple(OBJECTS)}
_CANDIDATES = {TARGET_ROLE: COUNTERFACTUAL_FAMILIES, ANCHOR_ROLE: ANCHOR_FAMILIES}
# Template placeholder -> the task field whose object it names.
_PLACEHOLDER_FIELDS = {"object": "target", "target": "target", "anchor": "anchor"}
# An object leaning more than this is lying, not a target these families lay out.
STANDING_TILT_RAD = math.radians(20.0)
# Anchor labels: the target counts as carried while held at most this far below the height the
# expert carries it at (m; its position tolerance is 7 mm).
CARRY_HEIGHT_TOLERANCE_M = 0.015
# Anchor labels: the ticks before the carry recorded as its history (a 6-frame window's other 5).
CARRY_HISTORY_TICKS = 5


def check_role(role: str) -> None:
    """Raise ValueError naming the roles a counterfactual can rename."""
    if role not in _CANDIDATES:
        roles = ", ".join(_CANDIDATES)
        raise ValueError(f"counterfactual role must be one of {roles}, not {role!r}")


def check_counterfactual_family(family: str, role: str = TARGET_ROLE) -> None:
    """Raise ValueError naming the families that have counterfactual labels for `role`."""
    check_role(role)
    families = _CANDIDATES[role]
    if family not in families:
        what = "one object among alike ones" if role == TARGET_ROLE else "an object to put it by"
        raise ValueError(
            f"counterfactual {role} labels exist for {', '.join(families)}, "
            f"not {family!r} (its instruction does not name {what})"
        )


def wording_rng(seed: int, role: str = TARGET_ROLE) -> np.random.Generator:
    """The random stream that words a layout's alternatives: the same for a seed and role in
    collection and in `rt-ros grounding`."""
    return np.random.default_rng([seed, 11] if role == TARGET_ROLE else [seed, 13])


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
    task: Task,
    world: SimWorld,
    split: str,
    rng: np.random.Generator,
    role: str = TARGET_ROLE,
) -> list[Task]:
    """The same task with its `role` (target or anchor) renamed to every other candidate object
    standing on the counter (not one the instruction names otherwise), worded with the same
    template and the same other words, in the same split; `world` must hold the layout `task`
    was sampled in."""
    check_counterfactual_family(task.family, role)
    template, words = instruction_wording(task, split)
    named = {
        getattr(task, field) for field in _PLACEHOLDER_FIELDS.values() if hasattr(task, field)
    }
    alternatives = []
    for name in _CANDIDATES[role][task.family]:
        if name in named or world.is_parked(name):
            continue
        if world.object_tilt_rad(name) > STANDING_TILT_RAD:
            continue
        reworded = {
            placeholder: choose(rng, OBJECTS[name].words)
            if _PLACEHOLDER_FIELDS[placeholder] == role
            else word
            for placeholder, word in words.items()
        }
        alternative = dataclasses.replace(
            task, **{role: name}, instruction=template.format(**reworded)
        )
        if alternative.in_split(world, split):
            alternatives.append(alternative)
    return alternatives


def carrying(world: SimWorld, target: str, config: ExpertConfig) -> bool:
    """Whether the robot holds `target` up at the height the expert carries it at (lifted from
    its grasp to `carry_height_m`, less `CARRY_HEIGHT_TOLERANCE_M`)."""
    raised_m = config.carry_height_m - config.grasp_height_m(OBJECTS[target].kind)
    lifted_m = world.object_height_m(target) - OBJECTS[target].rest_height_m
    held = world.fingers_touching(target) > 0
    return held and lifted_m >= raised_m - CARRY_HEIGHT_TOLERANCE_M


@dataclass(frozen=True)
class LabelledState:
    """One visited state: its frame, the robot's state, what ran, and each alternative's label."""

    rgb: np.ndarray
    state: WorldState
    executed: Action
    labels: tuple[Action, ...]


class CounterfactualDriver:
    """The scripted expert drives its own task; an expert per alternative (its `role` renamed)
    follows along and labels the states of the role's window: for the target, from the first
    tick until the driving expert first touches its target; for the anchor, while the driving
    expert carries its target (`carrying`), after the `CARRY_HISTORY_TICKS` ticks before it. An
    alternative whose expert gives up before the window opens is dropped; one giving up inside
    it closes the window. With `max_ticks`, at most that many states of the window are labelled
    (history aside) and the episode then ends there. `states` and `alternatives` hold the
    result."""

    def __init__(
        self,
        expert: ScriptedExpert,
        split: str,
        rng: np.random.Generator,
        max_ticks: int | None = None,
        role: str = TARGET_ROLE,
    ) -> None:
        if max_ticks is not None and max_ticks < 1:
            raise ValueError(f"max_ticks ({max_ticks!r}) must be >= 1")
        check_role(role)
        self.expert = expert
        self.space = expert.space
        self.role = role
        self._split = split
        self._rng = rng
        self._max_ticks = max_ticks
        self._task: Task | None = None
        self._labellers: list[ScriptedExpert] = []
        self.alternatives: list[Task] = []
        self.states: list[LabelledState] = []
        self._history: deque[LabelledState] = deque(maxlen=CARRY_HISTORY_TICKS)
        self._window_ticks = 0
        self._started = False
        self._following = False

    @property
    def task(self) -> Task:
        if self._task is None:
            raise RuntimeError("CounterfactualDriver: no task before reset(task)")
        return self._task

    def reset(self, task: Task) -> None:
        self._task = task
        self.expert.reset(task)
        self.alternatives, self._labellers, self.states = [], [], []
        self._history.clear()
        self._window_ticks = 0
        self._started = self._following = False

    def _in_window(self, world: SimWorld) -> bool:
        if self.role == TARGET_ROLE:
            return not world.robot_touching(self.task.target)
        return carrying(world, self.task.target, self.expert.config)

    def _label(self, world: SimWorld, action: Action) -> None:
        """One tick of the alternatives' experts while they follow the driving one."""
        labels = [labeller(world) for labeller in self._labellers]
        given_up = [label.mode == "terminate" for label in labels]
        if any(given_up) and not self._window_ticks:
            kept = [i for i, gave_up in enumerate(given_up) if not gave_up]
            self.alternatives = [self.alternatives[i] for i in kept]
            self._labellers = [self._labellers[i] for i in kept]
            labels = [labels[i] for i in kept]
            self._history.clear()  # the history's labels no longer line up
            self._following = bool(self._labellers)
            if not self._following:
                return
        elif any(given_up):
            self._following = False
            return
        in_window = self._in_window(world)
        if not in_window and self._window_ticks:
            self._following = False  # the window has closed
            return
        if not in_window and self.role == TARGET_ROLE:
            self._following = False  # touching from the start: no approach to label
            return
        visited = LabelledState(world.render(), world.state(), action, tuple(labels))
        if not in_window:
            self._history.append(visited)
            return
        self.states.extend(self._history)
        self._history.clear()
        self.states.append(visited)
        self._window_ticks += 1
        if self._max_ticks is not None and self._window_ticks >= self._max_ticks:
            self._following = False

    def __call__(self, world: SimWorld) -> Action:
        if self._task is None:
            raise RuntimeError("CounterfactualDriver: call reset(task) before the first action")
        if not self._started:
            # First tick: the layout is in place, so the alternatives can be read from it.
            self._started = True
            self.alternatives = alternative_tasks(
                self._task, world, self._split, self._rng, self.role
            )
            for alternative in self.alternatives:
                labeller = ScriptedExpert(self.space, self.expert.config)
                labeller.reset(alternative)
                self._labellers.append(labeller)
            self._following = bool(self._labellers)
        action = self.expert(world)
        if self._following:
            self._label(world, action)
        if self._max_ticks is not None and not self._following:
            # Nothing more to label: end the episode (the demonstration is not recorded).
            return self.expert.encode(Intent(np.zeros(3), np.zeros(3), OPEN, mode="terminate"))
        return action
