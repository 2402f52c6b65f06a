"""`rt-ros collect`: scripted-expert demonstrations recorded as rosbag2-compatible MCAP files.

One file per episode, `<family>_seed<seed>.mcap`, holding what a robot running rt_ros would log:
the head camera (`/camera/image_raw`, the frame each action was computed from), the instruction,
joint states, the commands the policy node would publish for each action (`/cmd/arm`,
`/cmd/base`, `/cmd/gripper`, `/cmd/mode`), the action tokens (`/action/tokens`, in the order of
the action-space profile named in `/episode/info`), the episode's success flag and a JSON summary
(`/episode/info`: family, seed, instruction, steps, action space, control period).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rt_ros.runtime.action import Action
from rt_ros.runtime.action_motion import action_to_motion
from rt_ros.sim.expert import RT1_CONTROL_PERIOD_S, EpisodeResult, ScriptedExpert, run_episode
from rt_ros.sim.tasks import Task
from rt_ros.sim.world import SimWorld
from rt_ros.train.mcap_bag import McapBagWriter

CAMERA_FRAME = "head_camera_optical_frame"
BASE_FRAME = "base_link"


def _stamp(time_ns: int) -> dict:
    return {"sec": time_ns // 1_000_000_000, "nanosec": time_ns % 1_000_000_000}


def _twist(values: np.ndarray, time_ns: int) -> dict:
    linear = {"x": float(values[0]), "y": float(values[1]), "z": float(values[2])}
    angular = {"x": float(values[3]), "y": float(values[4]), "z": float(values[5])}
    return {
        "header": {"stamp": _stamp(time_ns), "frame_id": BASE_FRAME},
        "twist": {"linear": linear, "angular": angular},
    }


class _RecordingExpert:
    """The scripted expert, with every observation and action written to a bag as it happens."""

    def __init__(self, expert: ScriptedExpert, bag: McapBagWriter, period_s: float) -> None:
        self.expert = expert
        self.space = expert.space
        self._bag = bag
        self._period_s = period_s

    def reset(self, task: Task) -> None:
        self.expert.reset(task)
        self._bag.write(
            "/instruction", "std_msgs/msg/String", {"data": task.instruction}, time_ns=0
        )

    def __call__(self, world: SimWorld) -> Action:
        action = self.expert(world)
        self._record(world, action)
        return action

    def _record(self, world: SimWorld, action: Action) -> None:
        state = world.state()
        time_ns = round(state.time_s * 1e9)
        rgb = world.render()
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
        motion = action_to_motion(action, self.space, self._period_s)
        base = motion.base_twist
        bag.write(
            "/cmd/arm",
            "geometry_msgs/msg/TwistStamped",
            _twist(motion.arm_twist, time_ns),
            time_ns,
        )
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
                    "dim": [{"label": self.space.name, "size": len(action.tokens), "stride": 1}],
                    "data_offset": 0,
                },
                "data": [int(t) for t in action.tokens],
            },
            time_ns,
        )


@dataclass(frozen=True)
class CollectedEpisode:
    """An episode's outcome and the file it was written to."""

    result: EpisodeResult
    path: Path
    messages: int


def collect_demonstrations(
    family: str,
    episodes: int,
    out_dir: Path,
    seed_start: int = 0,
    control_period_s: float = RT1_CONTROL_PERIOD_S,
    world: SimWorld | None = None,
    on_episode: Callable[[CollectedEpisode], None] | None = None,
) -> list[CollectedEpisode]:
    """Run the scripted expert for `episodes` seeds of `family`, one MCAP file each."""
    world = world or SimWorld()
    expert = ScriptedExpert()
    collected = []
    for seed in range(seed_start, seed_start + episodes):
        path = Path(out_dir) / f"{family}_seed{seed}.mcap"
        with McapBagWriter(path) as bag:
            recorder = _RecordingExpert(expert, bag, control_period_s)
            result = run_episode(world, family, seed, recorder, control_period_s)
            end_ns = round(world.state().time_s * 1e9)
            bag.write("/episode/success", "std_msgs/msg/Bool", {"data": result.success}, end_ns)
            info = {
                "family": family,
                "seed": seed,
                "instruction": result.instruction,
                "success": result.success,
                "steps": result.steps,
                "action_space": expert.space.name,
                "control_period_s": control_period_s,
                "source": "rt_ros scripted expert",
            }
            bag.write("/episode/info", "std_msgs/msg/String", {"data": json.dumps(info)}, end_ns)
            messages = bag.messages
        episode = CollectedEpisode(result, path, messages)
        collected.append(episode)
        if on_episode is not None:
            on_episode(episode)
    return collected
