"""`rt-ros expert-eval`: the scripted expert's success per task family over many seeds.

Only argparse and rich are imported at module level, so that `rt-ros` starts without the `sim`
extra; MuJoCo is loaded when the command runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from rt_ros.sim.expert import EpisodeResult

DEFAULT_EPISODES = 50

_worker_state: dict[str, object] = {}


@dataclass(frozen=True)
class FamilyReport:
    """The expert's results on one family."""

    family: str
    results: tuple[EpisodeResult, ...]
    wall_s: float

    @property
    def successes(self) -> int:
        return sum(result.success for result in self.results)

    @property
    def success_rate(self) -> float:
        return self.successes / len(self.results) if self.results else 0.0

    @property
    def failed_seeds(self) -> tuple[int, ...]:
        return tuple(result.seed for result in self.results if not result.success)


def _run_one(job: tuple[str, int, str, float]) -> EpisodeResult:
    """One episode in this process (a pool worker or the caller), reusing its world."""
    from rt_ros.sim.expert import ExpertConfig, ScriptedExpert, run_episode
    from rt_ros.sim.world import SimWorld

    family, seed, action_space, approach_gain = job
    if "world" not in _worker_state:
        _worker_state["world"] = SimWorld()
    if _worker_state.get("expert_key") != (action_space, approach_gain):
        config = ExpertConfig(approach_gain=approach_gain)
        _worker_state["expert"] = ScriptedExpert(action_space, config)
        _worker_state["expert_key"] = (action_space, approach_gain)
    return run_episode(_worker_state["world"], family, seed, _worker_state["expert"])


def evaluate(
    families: Sequence[str],
    episodes: int,
    first_seed: int = 0,
    action_space: str = "rt1_everyday_robots",
    jobs: int = 1,
    console: Console | None = None,
    approach_gain: float = 1.0,
) -> list[FamilyReport]:
    """Run the expert on seeds first_seed .. first_seed + episodes - 1 of each family (with
    `approach_gain`, see ExpertConfig)."""
    from rt_ros.sim.expert import ExpertConfig
    from rt_ros.sim.tasks import get_task

    ExpertConfig(approach_gain=approach_gain)  # ValueError for a bad gain, before any work
    for family in families:
        get_task(family)  # KeyError naming the families for a bad name, before any work
    if episodes < 1:
        raise ValueError(f"episodes ({episodes!r}) must be >= 1")
    if jobs < 1:
        raise ValueError(f"jobs ({jobs!r}) must be >= 1")
    reports = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[successes]} ok"),
        TimeElapsedColumn(),
    )
    pool = ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else None
    try:
        with Progress(*columns, console=console or Console(stderr=True)) as progress:
            for family in families:
                bar = progress.add_task(family, total=episodes, successes=0)
                job_list = [
                    (family, first_seed + i, action_space, approach_gain) for i in range(episodes)
                ]
                start = time.perf_counter()
                results = []
                outcomes = pool.map(_run_one, job_list) if pool else map(_run_one, job_list)
                for result in outcomes:
                    results.append(result)
                    successes = sum(item.success for item in results)
                    progress.update(bar, advance=1, successes=successes)
                reports.append(FamilyReport(family, tuple(results), time.perf_counter() - start))
    finally:
        if pool is not None:
            pool.shutdown()
    return reports


def report_table(reports: Sequence[FamilyReport]) -> Table:
    """Success per family as a rich table."""
    table = Table(title="Scripted expert, success per task family")
    for column in (
        "family",
        "episodes",
        "success",
        "rate",
        "mean steps",
        "wall s",
        "failed seeds",
    ):
        table.add_column(
            column, justify="left" if column in ("family", "failed seeds") else "right"
        )
    for report in reports:
        steps = sum(result.steps for result in report.results) / len(report.results)
        failed = report.failed_seeds
        table.add_row(
            report.family,
            str(len(report.results)),
            str(report.successes),
            f"{100 * report.success_rate:.1f}%",
            f"{steps:.1f}",
            f"{report.wall_s:.0f}",
            ", ".join(map(str, failed[:10])) + (" ..." if len(failed) > 10 else ""),
        )
    return table


def _cmd_expert_eval(args: argparse.Namespace) -> int:
    from rt_ros.sim.tasks import FAMILIES

    families = args.family or list(FAMILIES)
    console = Console(stderr=True)
    try:
        reports = evaluate(
            families,
            args.episodes,
            args.seed,
            args.action_space,
            args.jobs,
            console,
            args.approach_gain,
        )
    except (KeyError, ValueError) as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    Console(width=140).print(report_table(reports))
    below = [r.family for r in reports if r.success_rate < args.min_success_rate]
    if below:
        console.print(
            f"[red]below --min-success-rate {args.min_success_rate}:[/red] {', '.join(below)}"
        )
        return 1
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add `expert-eval` to the `rt-ros` command's subparsers."""
    parser = subparsers.add_parser(
        "expert-eval", help="scripted expert success per task family in the MuJoCo kitchen"
    )
    parser.add_argument(
        "--family",
        action="append",
        help="task family (pick, move_near, knock_over, place_upright, drawer); repeat for "
        "several; default: all",
    )
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES, help="seeds per family")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument(
        "--action-space", default="rt1_everyday_robots", help="profile name or YAML path"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--approach-gain",
        type=float,
        default=1.0,
        help="fraction of the distance left the expert translates each tick, up to its step "
        "limit (1: deadbeat; 0.5: geometric)",
    )
    parser.add_argument(
        "--min-success-rate",
        type=float,
        default=0.0,
        help="exit 1 if a family's success rate is below this (0..1)",
    )
    parser.set_defaults(func=_cmd_expert_eval)
