"""Where the gripper is when the policy closes it: grasp precision, measured.

Success rates over a few dozen episodes move by chance as much as by a better model. A grasp
attempt's miss distance is a continuous figure on every attempt, and it says *why* an episode
failed: the gripper closed beside the object, on another object, or never closed.

In the families whose expert begins by grasping the target from above (`pick`, `move_near`), every
tick at which the policy's gripper command goes from open to closed is a grasp attempt. At that
moment (the state the action was computed from) the tool centre point's offset from the expert's
grasp point for the target is what the attempt missed by, in the base frame: forward, lateral, and
height above the grasp height. The expert closes within its 5 mm position tolerance of that
point; a can is 66 mm across.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rt_ros.eval.statistics import wilson_interval
from rt_ros.runtime.action import Action
from rt_ros.runtime.action_motion import action_to_motion
from rt_ros.sim.expert import RT1_CONTROL_PERIOD_S, EpisodePolicy, ExpertConfig, run_episode
from rt_ros.sim.objects import OBJECTS
from rt_ros.sim.tasks import Task
from rt_ros.sim.world import SimWorld

GRASP_FAMILIES = ("pick", "move_near")
# A gripper command above this closedness counts as closed (-1 open .. +1 closed).
CLOSED_ABOVE = 0.5
# An attempt whose tool centre point is this near the target's axis, horizontally, is on it.
ON_TARGET_M = 0.02
PLOT_HALF_WIDTH_M = 0.10


def grasp_onsets(closedness: Sequence[float], closed_above: float = CLOSED_ABOVE) -> list[int]:
    """Ticks at which the gripper command goes from open to closed (tick 0 counts if closed)."""
    onsets = []
    was_closed = False
    for tick, value in enumerate(closedness):
        closed = value > closed_above
        if closed and not was_closed:
            onsets.append(tick)
        was_closed = closed
    return onsets


@dataclass(frozen=True)
class GraspAttempt:
    """One close of the gripper: when, how far from the expert's grasp point, next to what."""

    tick: int
    forward_m: float
    lateral_m: float
    height_m: float  # above the expert's grasp height for the target
    nearest: str  # the object whose axis is horizontally nearest the tool centre point
    # The tool's horizontal distance from the target's axis at its nearest since the previous
    # attempt (or the episode's start): an attempt that was once on target and then closed
    # beside it drifted off on the way down.
    closest_before_m: float = math.inf

    @property
    def horizontal_m(self) -> float:
        return math.hypot(self.forward_m, self.lateral_m)

    @property
    def drifted_off(self) -> bool:
        """Closed beside the target after having been on it on the way."""
        return self.closest_before_m <= ON_TARGET_M < self.horizontal_m


@dataclass(frozen=True)
class EpisodeGrasps:
    """One episode's grasp attempts, in order."""

    family: str
    seed: int
    target: str
    success: bool
    steps: int
    attempts: tuple[GraspAttempt, ...]

    @property
    def first(self) -> GraspAttempt | None:
        return self.attempts[0] if self.attempts else None

    def to_dict(self) -> dict:
        return {
            "family": self.family,
            "seed": self.seed,
            "target": self.target,
            "success": self.success,
            "steps": self.steps,
            "attempts": [
                {
                    "tick": a.tick,
                    "forward_m": round(a.forward_m, 4),
                    "lateral_m": round(a.lateral_m, 4),
                    "height_m": round(a.height_m, 4),
                    "horizontal_m": round(a.horizontal_m, 4),
                    "nearest": a.nearest,
                    "closest_before_m": round(a.closest_before_m, 4),
                }
                for a in self.attempts
            ],
        }


class _Recorder:
    """`run_episode`'s on_step: the gripper command and the tool's offset at every tick."""

    def __init__(self, task: Task, policy: EpisodePolicy, config: ExpertConfig) -> None:
        self.target = task.target
        self.grasp_height_m = config.grasp_height_m(OBJECTS[task.target].kind)
        self.policy = policy
        self.closedness: list[float] = []
        self.ticks: list[tuple[float, float, float, str]] = []

    def __call__(self, world: SimWorld, action: Action) -> None:
        motion = action_to_motion(action, self.policy.space, RT1_CONTROL_PERIOD_S)
        self.closedness.append(motion.gripper_closedness)
        tool, _ = world.ee_pose()
        target = world.to_base(world.object_position(self.target))
        standing = {
            name: world.to_base(world.object_position(name))[:2]
            for name in OBJECTS
            if not world.is_parked(name)
        }
        nearest = min(standing, key=lambda name: np.linalg.norm(standing[name] - tool[:2]))
        height = tool[2] - (world.counter_height_m + self.grasp_height_m)
        self.ticks.append((tool[0] - target[0], tool[1] - target[1], height, nearest))

    def attempts(self) -> tuple[GraspAttempt, ...]:
        attempts = []
        since = 0
        for tick in grasp_onsets(self.closedness):
            closest = min(math.hypot(f, lat) for f, lat, _, _ in self.ticks[since : tick + 1])
            attempts.append(GraspAttempt(tick, *self.ticks[tick], closest_before_m=closest))
            since = tick + 1
        return tuple(attempts)


def measure_episode(
    world: SimWorld,
    family: str,
    seed: int,
    policy: EpisodePolicy,
    split: str = "seen",
    config: ExpertConfig | None = None,
) -> EpisodeGrasps:
    """Run one episode of `policy` and record its grasp attempts on the target."""
    if family not in GRASP_FAMILIES:
        raise ValueError(f"grasp precision measures {', '.join(GRASP_FAMILIES)}, not {family!r}")
    config = config or ExpertConfig()
    recorders: list[_Recorder] = []

    class _Watched:  # the policy, with a recorder made for each episode's task
        space = policy.space

        def reset(self, task: Task) -> None:
            recorders.append(_Recorder(task, policy, config))
            policy.reset(task)

        def __call__(self, world: SimWorld) -> Action:
            return policy(world)

    def on_step(world: SimWorld, action: Action) -> None:
        recorders[-1](world, action)

    result = run_episode(world, family, seed, _Watched(), split=split, on_step=on_step)
    recorder = recorders[-1]
    return EpisodeGrasps(
        family=family,
        seed=seed,
        target=recorder.target,
        success=result.success,
        steps=result.steps,
        attempts=recorder.attempts(),
    )


def measure_grasp_precision(
    world: SimWorld,
    policy: EpisodePolicy,
    families: Iterable[str],
    seeds: Iterable[int],
    split: str = "seen",
    on_episode: Callable[[EpisodeGrasps], None] | None = None,
) -> list[EpisodeGrasps]:
    """`measure_episode` over every (family, seed)."""
    episodes = []
    for family in families:
        for seed in seeds:
            episode = measure_episode(world, family, seed, policy, split)
            episodes.append(episode)
            if on_episode is not None:
                on_episode(episode)
    return episodes


@dataclass(frozen=True)
class GraspSummary:
    """A family's grasp attempts summed up (first attempts unless said otherwise)."""

    family: str
    episodes: int
    successes: int
    never_closed: int
    on_other_object: int  # first attempt nearest another object than the target
    on_target: int  # first attempt within ON_TARGET_M of the target's axis
    # First attempts off target that had been within ON_TARGET_M of it before closing.
    drifted_off: int
    first_horizontal_cm: tuple[float, float, float]  # 25th, 50th, 75th percentile
    first_forward_cm_mean: float
    first_lateral_cm_mean: float
    first_height_cm_median: float
    attempts_mean: float
    # Episodes with two or more attempts, and those whose attempts missed on the same side:
    # a miss repeated in the same direction is a bias in where it thinks the object is.
    retried: int
    retried_same_side: int

    @property
    def on_target_ci95(self) -> tuple[float, float]:
        return wilson_interval(self.on_target, self.episodes)

    def to_dict(self) -> dict:
        low, high = self.on_target_ci95
        return {
            "family": self.family,
            "episodes": self.episodes,
            "successes": self.successes,
            "never_closed": self.never_closed,
            "on_other_object": self.on_other_object,
            "on_target": self.on_target,
            "on_target_ci95": [round(low, 4), round(high, 4)],
            "drifted_off": self.drifted_off,
            "first_horizontal_cm_p25_p50_p75": [round(v, 2) for v in self.first_horizontal_cm],
            "first_forward_cm_mean": round(self.first_forward_cm_mean, 2),
            "first_lateral_cm_mean": round(self.first_lateral_cm_mean, 2),
            "first_height_cm_median": round(self.first_height_cm_median, 2),
            "attempts_mean": round(self.attempts_mean, 2),
            "retried": self.retried,
            "retried_same_side": self.retried_same_side,
        }


def _same_side(attempts: Sequence[GraspAttempt]) -> bool:
    """Whether every attempt missed in the direction of the first (positive dot products)."""
    first = np.array([attempts[0].forward_m, attempts[0].lateral_m])
    return all(float(first @ np.array([a.forward_m, a.lateral_m])) > 0 for a in attempts[1:])


def summarise(episodes: Sequence[EpisodeGrasps]) -> list[GraspSummary]:
    """One summary per family, in the order the families first appear."""
    summaries = []
    for family in dict.fromkeys(e.family for e in episodes):
        mine = [e for e in episodes if e.family == family]
        first_pairs = [(e, e.first) for e in mine if e.first is not None]
        firsts = [a for _, a in first_pairs]
        horizontal = np.array([a.horizontal_m for a in firsts]) * 100
        retried = [e for e in mine if len(e.attempts) >= 2]
        summaries.append(
            GraspSummary(
                family=family,
                episodes=len(mine),
                successes=sum(e.success for e in mine),
                never_closed=len(mine) - len(firsts),
                on_other_object=sum(a.nearest != e.target for e, a in first_pairs),
                on_target=sum(
                    a.nearest == e.target and a.horizontal_m <= ON_TARGET_M for e, a in first_pairs
                ),
                drifted_off=sum(a.nearest == e.target and a.drifted_off for e, a in first_pairs),
                first_horizontal_cm=(
                    tuple(float(v) for v in np.percentile(horizontal, [25, 50, 75]))
                    if len(horizontal)
                    else (math.nan,) * 3
                ),
                first_forward_cm_mean=_mean_cm(a.forward_m for a in firsts),
                first_lateral_cm_mean=_mean_cm(a.lateral_m for a in firsts),
                first_height_cm_median=(
                    float(np.median([a.height_m for a in firsts])) * 100 if firsts else math.nan
                ),
                attempts_mean=float(np.mean([len(e.attempts) for e in mine])),
                retried=len(retried),
                retried_same_side=sum(_same_side(e.attempts) for e in retried),
            )
        )
    return summaries


def _mean_cm(values_m: Iterable[float]) -> float:
    values = list(values_m)
    return float(np.mean(values)) * 100 if values else math.nan


def plot_first_attempts(
    policy_episodes: Sequence[EpisodeGrasps],
    expert_episodes: Sequence[EpisodeGrasps],
    out_path,
    title: str,
) -> None:
    """Per family: where the first attempt closed, relative to the target's grasp point (seen
    from above; forward up), successes and failures apart, the expert's beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(e.family for e in policy_episodes))
    figure, axes = plt.subplots(
        1, len(families), figsize=(4.6 * len(families), 4.6), squeeze=False
    )
    for axis, family in zip(axes[0], families, strict=True):
        for episodes, style, label in (
            ([e for e in expert_episodes if e.family == family], dict(c="0.55", marker="+"),
             "scripted expert"),
            ([e for e in policy_episodes if e.family == family and e.success],
             dict(c="#519e3e", marker="o"), "policy, episode succeeded"),
            ([e for e in policy_episodes if e.family == family and not e.success],
             dict(c="#c0392b", marker="x"), "policy, episode failed"),
        ):  # fmt: skip
            firsts = [e.first for e in episodes if e.first is not None]
            beyond = sum(
                max(abs(a.forward_m), abs(a.lateral_m)) > PLOT_HALF_WIDTH_M for a in firsts
            )
            if beyond:
                label += f", {beyond} beyond the frame"
            axis.scatter(
                [100 * a.lateral_m for a in firsts],
                [100 * a.forward_m for a in firsts],
                label=f"{label} ({len(firsts)})",
                s=28,
                **style,
            )
        axis.add_patch(plt.Circle((0, 0), 100 * ON_TARGET_M, fill=False, ls="--", color="0.3"))
        axis.axhline(0, color="0.85", lw=0.8)
        axis.axvline(0, color="0.85", lw=0.8)
        half_cm = 100 * PLOT_HALF_WIDTH_M
        axis.set_xlim(half_cm, -half_cm)  # the robot's left on the left, as its camera sees it
        axis.set_ylim(-half_cm, half_cm)
        axis.set_aspect("equal")
        axis.set(xlabel="lateral offset (cm, + = robot's left)", ylabel="forward offset (cm)")
        axis.set_title(f"{family}: first close of the gripper")
        axis.legend(loc="lower left", fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(out_path, dpi=110)
    plt.close(figure)
