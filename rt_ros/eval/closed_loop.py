"""`rt-ros eval`: closed-loop success of a model bundle, per task family and split.

Each episode runs as `rt-ros demo` runs it: the driver node on the `sim` backend (MuJoCo in real
time, head camera over DDS) and the policy node on the bundle, in one executor; success is judged
from the simulator's state when the policy terminates or the family's step budget is spent.
`through="direct"` runs the same runtime without ROS on fixed physics steps (faster, for quick
checks while developing; the figures to report come through the nodes), optionally with the
nodes' action latency (`action_delay_s`) and the sim driver's safety layer and limits between the
actions and the world (`driver_limits`), the model and the expert alike. `jobs` worker processes
run episodes in parallel, each in its own ROS domain. The scripted expert runs the same seeds
and splits beside the model. Seeds start far above the ones `rt-ros collect` uses for training.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from rt_ros.sim.tasks import FAMILIES, SPLITS, check_split, get_task

EVAL_SEED_START = 100_000
THROUGH = ("nodes", "direct")
DEFAULT_SPLITS = ("seen", "unseen_paraphrase", "unseen_combination")


@dataclass(frozen=True)
class EvalSettings:
    """What one evaluation runs."""

    model_path: Path
    out_dir: Path
    families: tuple[str, ...] = FAMILIES
    splits: tuple[str, ...] = DEFAULT_SPLITS
    episodes: int = 100  # per family, split `seen`
    unseen_episodes: int | None = None  # per family and held-out split (None: `episodes`)
    seed_start: int = EVAL_SEED_START
    jobs: int = 1
    through: str = "nodes"
    control_rate_hz: float = 3.0
    # Direct only: each action takes effect this long (s, drawn per tick) after its frame.
    action_delay_s: tuple[float, float] = (0.0, 0.0)
    # Direct only: actions reach the world through the sim driver's safety layer and limits.
    driver_limits: bool = False
    with_expert: bool = True
    # Failure videos kept per (family, split); the rest are deleted.
    failure_videos: int = 5
    # ROS domain of worker i: domain_base + i (each job its own DDS domain, away from the
    # default 0 that robots use, and from the test suite's: nodes 1-60, launch files 71-101).
    domain_base: int = 61
    # The head camera rig (rt_ros.sim.camera_rig); None: the one the model was trained on.
    camera_rig: str | None = None

    def __post_init__(self) -> None:
        for family in self.families:
            get_task(family)
        for split in self.splits:
            check_split(split)
        if self.through not in THROUGH:
            raise ValueError(f"through ({self.through!r}) must be one of {THROUGH}")
        if self.through == "nodes" and (self.driver_limits or any(self.action_delay_s)):
            raise ValueError(
                "driver_limits and action_delay_s model the nodes in a direct evaluation; "
                "through the nodes the driver and the latency are real"
            )
        if self.episodes < 0 or (self.unseen_episodes or 0) < 0:
            raise ValueError("episodes must be >= 0")
        if self.jobs < 1:
            raise ValueError(f"jobs ({self.jobs!r}) must be >= 1")
        if not (self.domain_base >= 0 and self.domain_base + self.jobs - 1 <= 101):
            raise ValueError(
                f"domain_base ({self.domain_base}) + jobs ({self.jobs}) must stay within 0..101 "
                "(the ROS domain IDs that are safe on Linux)"
            )
        if not Path(self.model_path).is_dir():
            raise ValueError(f"model bundle {self.model_path} is not a folder")

    def episodes_for(self, split: str) -> int:
        if split == "seen" or self.unseen_episodes is None:
            return self.episodes
        return self.unseen_episodes


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluated episode (and the expert on the same layout)."""

    family: str
    split: str
    seed: int
    instruction: str
    success: bool
    steps: int
    terminated: bool
    wall_time_s: float
    video: str | None = None
    expert_success: bool | None = None
    expert_steps: int | None = None
    # Through the nodes: whether the machine kept the nodes' timing (see
    # rt_ros/nodes/episode_timing.py) and the counters behind it; None for direct episodes.
    degraded: bool | None = None
    lost_ticks: int | None = None
    stale_commands: int | None = None
    camera_rate_hz: float | None = None


@dataclass(frozen=True)
class _Job:
    family: str
    split: str
    seed: int
    video: Path  # written for a failure, deleted after a success


# Per worker process: what is built once and reused across episodes.
_WORKER: dict = {}


def _init_worker(domains, through: str) -> None:
    """Give this worker its own ROS domain (nodes) before rclpy is ever initialised."""
    os.environ["ROS_DOMAIN_ID"] = str(domains.get())
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    _WORKER["through"] = through


def _rig(settings: EvalSettings) -> str:
    """The camera rig of this evaluation (read from the model's manifest once per worker)."""
    if "camera_rig" not in _WORKER:
        from rt_ros.sim.camera_rig import rig_for_model

        _WORKER["camera_rig"] = rig_for_model(settings.camera_rig, settings.model_path)
    return _WORKER["camera_rig"]


def _world(settings: EvalSettings):
    if "world" not in _WORKER:
        from rt_ros.sim.camera_rig import world_config
        from rt_ros.sim.world import SimWorld

        _WORKER["world"] = SimWorld(world_config(_rig(settings)))
    return _WORKER["world"]


def _driver_limits(settings: EvalSettings):
    """The sim driver's limits when the settings ask for them (read once per worker), or None."""
    if not settings.driver_limits:
        return None
    if "driver_limits" not in _WORKER:
        from rt_ros.sim.safety_limited_world import sim_driver_limits

        _WORKER["driver_limits"] = sim_driver_limits()
    return _WORKER["driver_limits"]


def _run_nodes(settings: EvalSettings, job: _Job) -> EpisodeResult:
    from rt_ros.nodes.sim_demo import DemoSettings, run_node_episode

    video = job.video
    video.parent.mkdir(parents=True, exist_ok=True)
    episode = run_node_episode(
        DemoSettings(
            model_path=Path(settings.model_path).resolve(),
            task=job.family,
            seed=job.seed,
            split=job.split,
            control_rate_hz=settings.control_rate_hz,
            # Jobs side by side share the cores: one inference thread each.
            policy_threads=0 if settings.jobs == 1 else 1,
            camera_rig=_rig(settings),
        ),
        video,
    )
    keep = not episode.success
    if not keep:
        video.unlink(missing_ok=True)
    timing = episode.timing
    return EpisodeResult(
        family=job.family,
        split=job.split,
        seed=job.seed,
        instruction=episode.instruction,
        success=episode.success,
        steps=episode.steps,
        terminated=episode.terminated_by_policy,
        wall_time_s=episode.wall_time_s,
        video=str(video) if keep else None,
        degraded=timing.degraded,
        lost_ticks=timing.lost_ticks,
        stale_commands=timing.commands_rejected_stale,
        camera_rate_hz=round(timing.camera_rate_achieved_hz, 2),
    )


def _run_direct(settings: EvalSettings, job: _Job) -> EpisodeResult:
    import time

    import imageio.v2 as imageio

    from rt_ros.eval.bundle_policy import BundlePolicy
    from rt_ros.runtime.onnx_session import SessionConfig
    from rt_ros.runtime.policy import Policy
    from rt_ros.sim.expert import run_episode

    if "policy" not in _WORKER:
        config = SessionConfig(providers=("cpu",), intra_op_threads=1)
        _WORKER["policy"] = BundlePolicy(Policy.from_bundle(settings.model_path, config))
    frames = []
    started = time.monotonic()
    result = run_episode(
        _world(settings),
        job.family,
        job.seed,
        _WORKER["policy"],
        split=job.split,
        on_step=lambda world, action: frames.append(world.render()),
        action_delay_s=settings.action_delay_s,
        driver_limits=_driver_limits(settings),
    )
    video = None
    if not result.success and frames:
        job.video.parent.mkdir(parents=True, exist_ok=True)
        imageio.mimwrite(job.video, frames, fps=settings.control_rate_hz, macro_block_size=1)
        video = str(job.video)
    return EpisodeResult(
        family=job.family,
        split=job.split,
        seed=job.seed,
        instruction=result.instruction,
        success=result.success,
        steps=result.steps,
        terminated=result.terminated,
        wall_time_s=round(time.monotonic() - started, 2),
        video=video,
    )


def run_job(settings: EvalSettings, job: _Job) -> EpisodeResult:
    """One episode of the model, then the scripted expert on the same seed and split."""
    runner = _run_nodes if settings.through == "nodes" else _run_direct
    result = runner(settings, job)
    if not settings.with_expert:
        return result
    from rt_ros.sim.expert import ScriptedExpert, run_episode

    limits = _driver_limits(settings)
    expert = run_episode(
        _world(settings),
        job.family,
        job.seed,
        ScriptedExpert(),
        split=job.split,
        driver_limits=limits,
    )
    return replace(result, expert_success=expert.success, expert_steps=expert.steps)


def plan_jobs(settings: EvalSettings) -> list[_Job]:
    """Every (family, split, seed) to run; the first `failure_videos` of each row may record."""
    jobs = []
    failures = Path(settings.out_dir) / "failures"
    for family in settings.families:
        for split in settings.splits:
            for index in range(settings.episodes_for(split)):
                seed = settings.seed_start + index
                video = failures / f"{family}_{split}_seed{seed}.mp4"
                jobs.append(_Job(family, split, seed, video))
    return jobs


def evaluate(
    settings: EvalSettings, on_episode: Callable[[EpisodeResult], None] | None = None
) -> list[EpisodeResult]:
    """Run every planned episode in `jobs` worker processes; results in plan order."""
    Path(settings.out_dir).mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(settings)
    context = multiprocessing.get_context("spawn")
    domains = context.Queue()
    for worker in range(settings.jobs):
        domains.put(settings.domain_base + worker)
    results: dict[tuple[str, str, int], EpisodeResult] = {}
    recorded: dict[tuple[str, str], int] = {}
    with ProcessPoolExecutor(
        max_workers=settings.jobs,
        mp_context=context,
        initializer=_init_worker,
        initargs=(domains, settings.through),
    ) as pool:
        futures = {pool.submit(run_job, settings, job): job for job in jobs}
        for future in as_completed(futures):
            result = future.result()
            row = (result.family, result.split)
            if result.video is not None:
                # Keep the first failure_videos failures of each row.
                recorded[row] = recorded.get(row, 0) + 1
                if recorded[row] > settings.failure_videos:
                    Path(result.video).unlink(missing_ok=True)
                    result = replace(result, video=None)
            results[(result.family, result.split, result.seed)] = result
            if on_episode is not None:
                on_episode(result)
    return [results[(job.family, job.split, job.seed)] for job in jobs]


__all__ = [
    "DEFAULT_SPLITS",
    "EVAL_SEED_START",
    "SPLITS",
    "EpisodeResult",
    "EvalSettings",
    "evaluate",
]
