"""`rt-ros collect`: demonstrations recorded as rosbag2-compatible MCAP files.

One file per episode, `<family>_seed<seed>.mcap`, holding what a robot running rt_ros would log:
the head camera (`/camera/image_raw`, the frame each action was computed from), the instruction,
joint states, the commands published for each action (`/cmd/arm`, `/cmd/base`, `/cmd/gripper`,
`/cmd/mode`), the action tokens (`/action/tokens`, in the order of the action-space profile
named in `/episode/info`), the episode's success flag and a JSON summary (`/episode/info`:
family, seed, split, instruction, steps, action space, control period, who drove and who
labelled).

Three sources of episodes:
- the scripted expert drives and its actions are the labels (demonstrations);
- DAgger: a trained policy (a model bundle) drives, with the expert's action executed instead
  with probability `expert_mix`, and the scripted expert labels every state the robot visits.
  `/action/tokens` then holds the expert's label and `/cmd/*` what the robot actually did. A
  terminate of the policy's that the expert does not share is labelled and overruled (the
  expert's action runs), so the episode goes on to the states after it; an episode ends where the
  expert terminates: the task done, or its plan given up (that state gets no label).
- counterfactual labels (`pick`, `knock_over`, `move_near`): the expert demonstrates, and the
  bag holds one episode per other object its instruction could have named, with the expert's
  labels for that object over the approach (rt_ros.train.counterfactual); a seed with no such
  object writes none. With the anchor role (`move_near`), the object named to put the target
  by is renamed instead, and the labels cover the carry.

Episodes run in `jobs` worker processes, each with its own simulator; a seed always gives the
same layout whatever the number of jobs.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_motion import action_to_motion
from rt_ros.runtime.action_space import ActionSpace
from rt_ros.sim.camera_rig import DEFAULT_CAMERA_RIG, camera_rig
from rt_ros.sim.camera_rig import world_config as camera_rig_world_config
from rt_ros.sim.expert import (
    RT1_CONTROL_PERIOD_S,
    EpisodeResult,
    ExpertConfig,
    ScriptedExpert,
    run_episode,
)
from rt_ros.sim.tasks import Task, check_split, get_task
from rt_ros.sim.world import SimWorld, WorldState
from rt_ros.train.counterfactual import (
    TARGET_ROLE,
    CounterfactualDriver,
    check_counterfactual_family,
    wording_rng,
)
from rt_ros.train.mcap_bag import McapBagWriter

CAMERA_FRAME = "head_camera_optical_frame"
# Counterfactual episodes of one bag start this far apart in time (longer than any episode).
EPISODE_SPACING_NS = 10_000 * 1_000_000_000
BASE_FRAME = "base_link"
EXPERT_SOURCE = "rt_ros scripted expert"


def _stamp(time_ns: int) -> dict:
    return {"sec": time_ns // 1_000_000_000, "nanosec": time_ns % 1_000_000_000}


def _twist(values: np.ndarray, time_ns: int) -> dict:
    linear = {"x": float(values[0]), "y": float(values[1]), "z": float(values[2])}
    angular = {"x": float(values[3]), "y": float(values[4]), "z": float(values[5])}
    return {
        "header": {"stamp": _stamp(time_ns), "frame_id": BASE_FRAME},
        "twist": {"linear": linear, "angular": angular},
    }


class _EpisodeRecorder:
    """Writes one control tick to a bag: frame, joint states, executed commands, label tokens."""

    def __init__(
        self, bag: McapBagWriter, space: ActionSpace, period_s: float, offset_ns: int = 0
    ) -> None:
        self._bag = bag
        self._space = space
        self._period_s = period_s
        # Added to every stamp: several episodes in one bag follow each other in time.
        self._offset_ns = offset_ns
        self.ticks = 0

    def instruction(self, text: str) -> None:
        self._bag.write(
            "/instruction", "std_msgs/msg/String", {"data": text}, time_ns=self._offset_ns
        )

    def tick(self, state: WorldState, rgb: np.ndarray, executed: Action, label: Action) -> None:
        self.ticks += 1
        time_ns = self._offset_ns + round(state.time_s * 1e9)
        bag = self._bag
        bag.write(
            "/camera/image_raw",
            "sensor_msgs/msg/Image",
            {
                "header": {"stamp": _stamp(time_ns), "frame_id": CAMERA_FRAME},
                "height": rgb.shape[0],
                "width": rgb.shape[1],
                "encoding": "rgb8",
                "is_bigendian": 0,
                "step": rgb.shape[1] * 3,
                "data": rgb.tobytes(),
            },
            time_ns,
        )
        bag.write(
            "/joint_states",
            "sensor_msgs/msg/JointState",
            {
                "header": {"stamp": _stamp(time_ns), "frame_id": ""},
                "name": list(state.joint_names),
                "position": state.joint_positions.tolist(),
                "velocity": state.joint_velocities.tolist(),
                "effort": [],
            },
            time_ns,
        )
        motion = action_to_motion(executed, self._space, self._period_s)
        base = motion.base_twist
        arm = _twist(motion.arm_twist, time_ns)
        bag.write("/cmd/arm", "geometry_msgs/msg/TwistStamped", arm, time_ns)
        bag.write(
            "/cmd/base",
            "geometry_msgs/msg/TwistStamped",
            _twist(np.array([base[0], base[1], 0.0, 0.0, 0.0, base[2]]), time_ns),
            time_ns,
        )
        bag.write(
            "/cmd/gripper", "std_msgs/msg/Float64", {"data": motion.gripper_closedness}, time_ns
        )
        bag.write("/cmd/mode", "std_msgs/msg/String", {"data": motion.mode}, time_ns)
        bag.write(
            "/action/tokens",
            "std_msgs/msg/Int32MultiArray",
            {
                "layout": {
                    "dim": [{"label": self._space.name, "size": len(label.tokens), "stride": 1}],
                    "data_offset": 0,
                },
                "data": [int(t) for t in label.tokens],
            },
            time_ns,
        )


class _ExpertDriver:
    """The scripted expert drives and labels; every tick is recorded."""

    def __init__(self, expert: ScriptedExpert, recorder: _EpisodeRecorder) -> None:
        self.expert = expert
        self.space = expert.space
        self._recorder = recorder

    def reset(self, task: Task) -> None:
        self.expert.reset(task)
        self._recorder.instruction(task.instruction)

    def __call__(self, world: SimWorld) -> Action:
        action = self.expert(world)
        self._recorder.tick(world.state(), world.render(), action, action)
        return action


class _DaggerDriver:
    """A learned policy drives (the expert's action with probability `expert_mix`); the expert
    labels every visited state. Ends the episode where the expert's plan gives up."""

    def __init__(
        self,
        expert: ScriptedExpert,
        learner,  # rt_ros.runtime.policy.Policy
        expert_mix: float,
        rng: np.random.Generator,
        recorder: _EpisodeRecorder,
    ) -> None:
        self.expert = expert
        self.space = expert.space
        self._learner = learner
        self._mix = expert_mix
        self._rng = rng
        self._recorder = recorder
        self._task: Task | None = None
        self.expert_gave_up = False

    def reset(self, task: Task) -> None:
        self._task = task
        self.expert.reset(task)
        self._learner.reset(task.instruction)
        self._recorder.instruction(task.instruction)
        self.expert_gave_up = False

    def __call__(self, world: SimWorld) -> Action:
        label = self.expert(world)
        if label.mode == "terminate" and not self._task.success(world):
            # The expert's plan is over but the task is not done: no label for this state.
            self.expert_gave_up = True
            return label
        rgb = world.render()
        learned = self._learner.step(rgb, world.state().time_s)
        executed = label if self._rng.random() < self._mix else learned
        if executed.mode == "terminate" and label.mode != "terminate":
            executed = label  # a premature terminate is labelled, then overruled
        self._recorder.tick(world.state(), rgb, executed, label)
        return executed


@dataclass(frozen=True)
class CollectedEpisode:
    """An episode's outcome and the file it was written to (None: nothing to record, a
    counterfactual seed with no alternative object) holding `episodes` episodes."""

    result: EpisodeResult
    path: Path | None
    messages: int
    source: str
    episodes: int = 1


@dataclass(frozen=True)
class CollectSettings:
    """What one `collect` run records (validated before any worker starts)."""

    family: str
    out_dir: Path
    split: str = "seen"
    control_period_s: float = RT1_CONTROL_PERIOD_S
    # DAgger: the bundle that drives, and the probability of executing the expert's action.
    policy_path: Path | None = None
    expert_mix: float = 0.0
    # Each action takes effect this long (s, drawn per tick) after its frame, as through nodes.
    action_delay_s: tuple[float, float] = (0.0, 0.0)
    # Counterfactual labels (rt_ros.train.counterfactual) instead of the demonstrations, with
    # the role renamed (target or anchor); with counterfactual_ticks, only that many ticks of
    # the role's window (cheap: many layouts), the named object's own episode included.
    counterfactual: bool = False
    counterfactual_ticks: int | None = None
    counterfactual_role: str = TARGET_ROLE
    # The scripted expert's fraction of the distance left per tick (ExpertConfig.approach_gain).
    expert_approach_gain: float = 1.0
    # The head camera the episodes are seen through (rt_ros.sim.camera_rig), in every bag's info.
    camera_rig: str = DEFAULT_CAMERA_RIG

    def __post_init__(self) -> None:
        get_task(self.family)
        camera_rig(self.camera_rig)  # ValueError naming the rigs
        self.expert_config()  # a bad gain is refused before any worker starts
        check_split(self.split)
        if self.counterfactual:
            check_counterfactual_family(self.family, self.counterfactual_role)
            if self.policy_path is not None:
                raise ValueError("counterfactual labels follow the expert: no --policy with them")
        if self.counterfactual_ticks is not None:
            if not self.counterfactual:
                raise ValueError("counterfactual_ticks needs counterfactual labels")
            if self.counterfactual_ticks < 1:
                raise ValueError(
                    f"counterfactual_ticks ({self.counterfactual_ticks!r}) must be >= 1"
                )
        if self.counterfactual_role != TARGET_ROLE and not self.counterfactual:
            raise ValueError("counterfactual_role needs counterfactual labels")
        if not 0.0 <= self.expert_mix <= 1.0:
            raise ValueError(f"expert_mix ({self.expert_mix!r}) must be in [0, 1]")
        low, high = self.action_delay_s
        if not 0.0 <= low <= high < self.control_period_s:
            raise ValueError(
                f"action_delay_s ({low}, {high}) must be 0 <= low <= high < the control period "
                f"({self.control_period_s:.3f} s)"
            )
        if self.policy_path is not None and not Path(self.policy_path).is_dir():
            raise ValueError(f"policy bundle {self.policy_path} is not a folder")

    def expert_config(self) -> ExpertConfig:
        return ExpertConfig(approach_gain=self.expert_approach_gain)


# Per worker process: the simulator and the learned policy, built once and reused.
_WORKER: dict = {}


def _worker_state(settings: CollectSettings) -> tuple[SimWorld, object | None]:
    if _WORKER.get("camera_rig") != settings.camera_rig:
        _WORKER["world"] = SimWorld(camera_rig_world_config(settings.camera_rig))
        _WORKER["camera_rig"] = settings.camera_rig
    if settings.policy_path is not None and _WORKER.get("policy_path") != settings.policy_path:
        from rt_ros.runtime.onnx_session import SessionConfig
        from rt_ros.runtime.policy import Policy

        # One intra-op thread: the workers already use every core.
        config = SessionConfig(providers=("cpu",), intra_op_threads=1)
        _WORKER["policy"] = Policy.from_bundle(settings.policy_path, config)
        _WORKER["policy_path"] = settings.policy_path
    # A policy loaded for an earlier DAgger collection in this process drives nothing now.
    return _WORKER["world"], _WORKER.get("policy") if settings.policy_path is not None else None


def _expert(settings: CollectSettings) -> ScriptedExpert:
    return ScriptedExpert(config=settings.expert_config())


def episode_path(out_dir: Path, family: str, seed: int) -> Path:
    """Where the episode of `family` from `seed` is recorded."""
    return Path(out_dir) / f"{family}_seed{seed}.mcap"


def missing_seeds(out_dir: Path, family: str, seed_start: int, episodes: int) -> list[int]:
    """The seeds of `episodes` from `seed_start` with no finished recording in `out_dir` (an
    interrupted episode leaves only a `.mcap.partial`)."""
    seeds = range(seed_start, seed_start + episodes)
    return [seed for seed in seeds if not episode_path(out_dir, family, seed).is_file()]


def _run(settings: CollectSettings, world: SimWorld, seed: int, driver) -> EpisodeResult:
    """One episode of the settings' family, split, control period and action delays."""
    return run_episode(
        world,
        settings.family,
        seed,
        driver,
        settings.control_period_s,
        split=settings.split,
        action_delay_s=settings.action_delay_s,
    )


def collect_episode(settings: CollectSettings, seed: int) -> CollectedEpisode:
    """Record one episode of `settings.family` from `seed` (in this process)."""
    if settings.counterfactual:
        return _collect_counterfactual(settings, seed)
    world, learner = _worker_state(settings)
    expert = _expert(settings)
    path = episode_path(settings.out_dir, settings.family, seed)
    # Written under a temporary name: a file with the final name is always a whole episode.
    partial = path.with_suffix(".mcap.partial")
    dagger = learner is not None
    with McapBagWriter(partial) as bag:
        recorder = _EpisodeRecorder(bag, expert.space, settings.control_period_s)
        if dagger:
            driver = _DaggerDriver(
                expert, learner, settings.expert_mix, np.random.default_rng(seed), recorder
            )
        else:
            driver = _ExpertDriver(expert, recorder)
        result = _run(settings, world, seed, driver)
        source = "dagger" if dagger else "expert"
        if recorder.ticks == 0:
            # The expert's plan gave up on the first state (DAgger): no labelled frame, nothing
            # to learn from, and a bag without frames would be refused by training.
            bag.discard()
            return CollectedEpisode(result, None, 0, source, episodes=0)
        end_ns = round(world.state().time_s * 1e9)
        bag.write("/episode/success", "std_msgs/msg/Bool", {"data": result.success}, end_ns)
        info = {
            "family": settings.family,
            "seed": seed,
            "split": settings.split,
            "instruction": result.instruction,
            "success": result.success,
            "steps": result.steps,
            "action_space": expert.space.name,
            "control_period_s": settings.control_period_s,
            "action_delay_s": list(settings.action_delay_s),
            "source": source,
            "labels": EXPERT_SOURCE,
            "expert_approach_gain": settings.expert_approach_gain,
            "camera_rig": settings.camera_rig,
            "driver": (
                f"policy {Path(settings.policy_path).resolve()} (expert_mix "
                f"{settings.expert_mix:g})"
                if dagger
                else EXPERT_SOURCE
            ),
        }
        bag.write("/episode/info", "std_msgs/msg/String", {"data": json.dumps(info)}, end_ns)
        messages = bag.messages
    partial.replace(path)
    return CollectedEpisode(result, path, messages, source)


def _collect_counterfactual(settings: CollectSettings, seed: int) -> CollectedEpisode:
    """Run the expert's demonstration of `seed` and record, in one bag named as that episode
    would be (so it lands in the same held-out split), one episode per alternative target (or
    anchor)."""
    world, _ = _worker_state(settings)
    expert = _expert(settings)
    role = settings.counterfactual_role
    driver = CounterfactualDriver(
        expert, settings.split, wording_rng(seed, role), settings.counterfactual_ticks, role
    )
    result = _run(settings, world, seed, driver)
    if not driver.states:
        return CollectedEpisode(result, None, 0, "counterfactual", episodes=0)
    # (instruction, object renamed, labels per state): with the window's first ticks only, no
    # demonstration of the seed is recorded, so the named object's own episode comes first.
    episodes = [
        (alternative.instruction, getattr(alternative, role), [v.labels[i] for v in driver.states])
        for i, alternative in enumerate(driver.alternatives)
    ]
    if settings.counterfactual_ticks is not None:
        own = (result.instruction, getattr(driver.task, role), [v.executed for v in driver.states])
        episodes.insert(0, own)
    path = episode_path(settings.out_dir, settings.family, seed)
    partial = path.with_suffix(".mcap.partial")
    with McapBagWriter(partial) as bag:
        for index, (instruction, _, labels) in enumerate(episodes):
            recorder = _EpisodeRecorder(
                bag, expert.space, settings.control_period_s, index * EPISODE_SPACING_NS
            )
            recorder.instruction(instruction)
            for visited, label in zip(driver.states, labels, strict=True):
                recorder.tick(visited.state, visited.rgb, visited.executed, label)
        end_ns = (len(episodes) - 1) * EPISODE_SPACING_NS + round(
            driver.states[-1].state.time_s * 1e9
        )
        info = {
            "family": settings.family,
            "seed": seed,
            "split": settings.split,
            "instruction": result.instruction,
            "instructions": [instruction for instruction, _, _ in episodes],
            "role": role,
            f"{role}s": [renamed for _, renamed, _ in episodes],
            "steps": len(driver.states),
            "action_space": expert.space.name,
            "control_period_s": settings.control_period_s,
            "action_delay_s": list(settings.action_delay_s),
            "source": "counterfactual",
            "labels": f"{EXPERT_SOURCE}, for each {role}",
            "camera_rig": settings.camera_rig,
            "driver": f"{EXPERT_SOURCE}, for {result.instruction!r}",
        }
        bag.write("/episode/info", "std_msgs/msg/String", {"data": json.dumps(info)}, end_ns)
        messages = bag.messages
    partial.replace(path)
    return CollectedEpisode(result, path, messages, "counterfactual", episodes=len(episodes))


def collect_demonstrations(
    family: str,
    episodes: int,
    out_dir: Path,
    seed_start: int = 0,
    control_period_s: float = RT1_CONTROL_PERIOD_S,
    split: str = "seen",
    jobs: int = 1,
    policy_path: Path | None = None,
    expert_mix: float = 0.0,
    action_delay_s: tuple[float, float] = (0.0, 0.0),
    on_episode: Callable[[CollectedEpisode], None] | None = None,
    skip_existing: bool = False,
    counterfactual: bool = False,
    counterfactual_ticks: int | None = None,
    counterfactual_role: str = TARGET_ROLE,
    expert_approach_gain: float = 1.0,
    camera_rig: str = DEFAULT_CAMERA_RIG,
) -> list[CollectedEpisode]:
    """Record `episodes` seeds of `family` from `seed_start`, one MCAP file each, in `jobs`
    processes; with `policy_path`, DAgger episodes (see the module docstring); with
    `counterfactual`, counterfactual labels (rt_ros.train.counterfactual). With
    `skip_existing`, seeds already recorded in `out_dir` are kept and not recorded again (an
    interrupted collection resumes); the episodes recorded now are returned."""
    if jobs < 1:
        raise ValueError(f"jobs ({jobs!r}) must be >= 1")
    settings = CollectSettings(
        family,
        Path(out_dir),
        split,
        control_period_s,
        policy_path,
        expert_mix,
        action_delay_s,
        counterfactual,
        counterfactual_ticks,
        counterfactual_role,
        expert_approach_gain,
        camera_rig,
    )
    seeds = (
        missing_seeds(out_dir, family, seed_start, episodes)
        if skip_existing
        else range(seed_start, seed_start + episodes)
    )
    collected: list[CollectedEpisode] = []
    if jobs == 1:
        for seed in seeds:
            collected.append(collect_episode(settings, seed))
            if on_episode is not None:
                on_episode(collected[-1])
        return collected
    # Spawned workers: no simulator, OpenGL or ONNX Runtime state is inherited by a fork.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(collect_episode, settings, seed): seed for seed in seeds}
        for future in as_completed(futures):
            try:
                collected.append(future.result())
            except Exception as error:
                for pending in futures:
                    pending.cancel()
                raise RuntimeError(
                    f"{family} seed {futures[future]}: the episode failed: {error}"
                ) from error
            if on_episode is not None:
                on_episode(collected[-1])
    return sorted(collected, key=lambda episode: episode.result.seed)
