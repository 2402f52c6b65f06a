"""Does the policy act on the object its instruction names? The first action, measured.

For each layout of a family whose instruction names one object among alike ones on the counter
(rt_ros.train.counterfactual), and each other such object present: the policy's first action
on the layout's first frame, once for the instruction and once for the same instruction naming
the other object, beside the scripted expert's first action for each.

With the anchor role (`move_near`: the object to put the target by), the moment is the first
tick at which the expert demonstrating the layout carries its target lifted, and the policy
sees the window of frames that led there (the expert's own, as it would in an episode of its);
the instruction names another anchor, and the expert for that anchor, which grasped and lifted
just the same, gives its action there. Two figures per family:

- *choice*: how often the policy's first action is nearer (arm translation tokens, L1) to the
  expert's for the object named than to the expert's for the other one. 50% is a policy that
  ignores which object is named; ties count half.
- *shift*: how far the policy's first action moves (mean |token change| over the arm's x, y, z)
  when the instruction names the other object, beside how far the expert's moves.

Seeds default to the evaluation range (from 100000), which training never used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rt_ros.eval.statistics import wilson_interval
from rt_ros.runtime.action import Action
from rt_ros.runtime.action_space import ActionSpace
from rt_ros.sim.expert import ScriptedExpert, run_episode
from rt_ros.sim.tasks import Task
from rt_ros.sim.world import SimWorld
from rt_ros.train.counterfactual import (
    TARGET_ROLE,
    CounterfactualDriver,
    LabelledState,
    wording_rng,
)

ARM_TRANSLATION_ROLES = ("arm.linear.x", "arm.linear.y", "arm.linear.z")


class InstructedPolicy(Protocol):
    """What is measured: reset with an instruction, then one action per frame (rt_ros Policy)."""

    action_space: ActionSpace

    def reset(self, instruction: str) -> None: ...

    def step(self, rgb_frame: np.ndarray, stamp_s: float) -> Action: ...


@dataclass
class FamilyGrounding:
    """One family's pairs (layout, other object): choices won (x2, ties count 1) and shifts."""

    family: str
    layouts: int = 0
    pairs: int = 0
    half_choices: int = 0  # 2 per choice won, 1 per tie, of 2 choices per pair
    expert_shift_bins: list[float] = field(default_factory=list)
    policy_shift_bins: list[float] = field(default_factory=list)

    @property
    def choice_rate(self) -> float:
        return self.half_choices / (4 * self.pairs) if self.pairs else 0.0

    def choice_interval(self) -> tuple[float, float]:
        """95% Wilson interval of the choice rate over the 2 choices per pair."""
        return wilson_interval(round(self.half_choices / 2), 2 * self.pairs)

    def to_dict(self) -> dict:
        low, high = self.choice_interval()
        return {
            "family": self.family,
            "layouts": self.layouts,
            "pairs": self.pairs,
            "choice": self.choice_rate,
            "choice_ci95": [low, high],
            "expert_shift_bins": float(np.mean(self.expert_shift_bins or [0.0])),
            "policy_shift_bins": float(np.mean(self.policy_shift_bins or [0.0])),
        }


def _translation(tokens: Sequence[int], indices: list[int]) -> np.ndarray:
    return np.array([tokens[i] for i in indices], dtype=np.int64)


def _half_choice(policy: np.ndarray, named: np.ndarray, other: np.ndarray) -> int:
    """2 when the policy's action is nearer the named object's expert action, 1 on a tie."""
    to_named = int(np.abs(policy - named).sum())
    to_other = int(np.abs(policy - other).sum())
    return 2 if to_named < to_other else 1 if to_named == to_other else 0


@dataclass(frozen=True)
class GroundingMoment:
    """One layout's moment of choice: the frames that led to it (oldest first, the moment's
    last) and, per candidate task (the layout's own first), the expert's action there."""

    states: tuple[LabelledState, ...]
    candidates: tuple[tuple[Task, Action], ...]
    role: str

    def named(self, task: Task) -> str:
        return getattr(task, self.role)


def grounding_moment(
    world: SimWorld, family: str, seed: int, space: ActionSpace, split: str, role: str
) -> GroundingMoment | None:
    """The expert demonstrates (family, seed) up to the role's first labelled tick (the first
    tick for the target; the first carrying tick for the anchor); None without an alternative
    object or such a tick."""
    driver = CounterfactualDriver(
        ScriptedExpert(space), split, wording_rng(seed, role), max_ticks=1, role=role
    )
    run_episode(world, family, seed, driver, split=split)
    if not driver.states:
        return None
    moment = driver.states[-1]
    alternatives = zip(driver.alternatives, moment.labels, strict=True)
    candidates = ((driver.task, moment.executed), *alternatives)
    return GroundingMoment(tuple(driver.states), candidates, role)


def score_moment(
    policy: InstructedPolicy, moment: GroundingMoment, indices: list[int], into: FamilyGrounding
) -> None:
    """Step `policy` over the moment's frames once per candidate instruction and add its
    choices and shifts (each alternative against the layout's own task) to `into`."""
    chosen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for candidate, expert_action in moment.candidates:
        policy.reset(candidate.instruction)
        for visited in moment.states:
            action = policy.step(visited.rgb, visited.state.time_s)
        chosen[moment.named(candidate)] = (
            _translation(expert_action.tokens, indices),
            _translation(action.tokens, indices),
        )
    own, *alternatives = (task for task, _ in moment.candidates)
    named_expert, named_policy = chosen[moment.named(own)]
    for alternative in alternatives:
        other_expert, other_policy = chosen[moment.named(alternative)]
        into.pairs += 1
        into.half_choices += _half_choice(named_policy, named_expert, other_expert)
        into.half_choices += _half_choice(other_policy, other_expert, named_expert)
        into.expert_shift_bins.append(float(np.abs(named_expert - other_expert).mean()))
        into.policy_shift_bins.append(float(np.abs(named_policy - other_policy).mean()))


def translation_indices(space: ActionSpace) -> list[int]:
    """The arm translation dimensions' indices in `space` (ValueError naming any missing)."""
    roles = {dimension.role: index for index, dimension in enumerate(space.dimensions)}
    missing = [name for name in ARM_TRANSLATION_ROLES if name not in roles]
    if missing:
        raise ValueError(f"action space {space.name!r} has no {', '.join(missing)} dimension")
    return [roles[name] for name in ARM_TRANSLATION_ROLES]


def measure_grounding(
    policy: InstructedPolicy,
    world: SimWorld,
    families: Iterable[str],
    seeds: Iterable[int],
    split: str = "seen",
    role: str = TARGET_ROLE,
    on_layout: Callable[[str, int], None] | None = None,
) -> list[FamilyGrounding]:
    """The figures per family over `seeds` for the object in `role` (module docstring)."""
    indices = translation_indices(policy.action_space)
    seeds = list(seeds)
    results = []
    for family in families:
        grounding = FamilyGrounding(family)
        for seed in seeds:
            moment = grounding_moment(world, family, seed, policy.action_space, split, role)
            grounding.layouts += 1
            if moment is not None:
                score_moment(policy, moment, indices, grounding)
            if on_layout is not None:
                on_layout(family, seed)
        results.append(grounding)
    return results


__all__ = [
    "FamilyGrounding",
    "GroundingMoment",
    "grounding_moment",
    "measure_grounding",
    "score_moment",
]
