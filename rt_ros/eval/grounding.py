"""Does the policy act on the object its instruction names? The first action, measured.

For each layout of a family whose instruction names one object among alike ones on the counter
(rt_ros.train.counterfactual), and each other such object present: the policy's first action
on the layout's first frame, once for the instruction and once for the same instruction naming
the other object, beside the scripted expert's first action for each. Two figures per family:

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
from rt_ros.sim.expert import ScriptedExpert
from rt_ros.sim.tasks import get_task
from rt_ros.sim.world import SimWorld
from rt_ros.train.counterfactual import alternative_tasks, wording_rng

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


def measure_grounding(
    policy: InstructedPolicy,
    world: SimWorld,
    families: Iterable[str],
    seeds: Iterable[int],
    split: str = "seen",
    on_layout: Callable[[str, int], None] | None = None,
) -> list[FamilyGrounding]:
    """The first-action figures per family over `seeds` (see the module docstring)."""
    space = policy.action_space
    roles = {dimension.role: index for index, dimension in enumerate(space.dimensions)}
    missing = [role for role in ARM_TRANSLATION_ROLES if role not in roles]
    if missing:
        raise ValueError(f"action space {space.name!r} has no {', '.join(missing)} dimension")
    indices = [roles[role] for role in ARM_TRANSLATION_ROLES]
    seeds = list(seeds)
    results = []
    for family in families:
        grounding = FamilyGrounding(family)
        for seed in seeds:
            task = world.reset(seed, get_task(family), split)
            frame = world.render()
            alternatives = alternative_tasks(task, world, split, wording_rng(seed))
            grounding.layouts += 1
            first: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for candidate in (task, *alternatives):
                expert = ScriptedExpert(space)
                expert.reset(candidate)
                policy.reset(candidate.instruction)
                first[candidate.target] = (
                    _translation(expert(world).tokens, indices),
                    _translation(policy.step(frame, 0.0).tokens, indices),
                )
            named_expert, named_policy = first[task.target]
            for alternative in alternatives:
                other_expert, other_policy = first[alternative.target]
                grounding.pairs += 1
                grounding.half_choices += _half_choice(named_policy, named_expert, other_expert)
                grounding.half_choices += _half_choice(other_policy, other_expert, named_expert)
                grounding.expert_shift_bins.append(
                    float(np.abs(named_expert - other_expert).mean())
                )
                grounding.policy_shift_bins.append(
                    float(np.abs(named_policy - other_policy).mean())
                )
            if on_layout is not None:
                on_layout(family, seed)
        results.append(grounding)
    return results


__all__ = ["FamilyGrounding", "measure_grounding"]
