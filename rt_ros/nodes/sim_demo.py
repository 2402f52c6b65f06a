"""`rt-ros demo`: the simulated robot follows an instruction with a model bundle, end to end.

One process, one executor: the driver node on the `sim` backend (MuJoCo physics in real time,
head camera over DDS), the policy node on the bundle, and a recorder node that says the
instruction, watches the commands and writes the head camera with the instruction, the step and
the decoded action drawn on it to an mp4. The episode ends when the policy terminates or after
`max_steps` policy steps; success is judged from the simulator's state.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import imageio.v2 as imageio
import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Float64, String

from rt_ros.nodes.driver_node import DriverNode
from rt_ros.nodes.episode_timing import EpisodeTiming
from rt_ros.nodes.image_conversion import image_msg_to_rgb
from rt_ros.nodes.policy_node import PolicyNode, make_executor
from rt_ros.nodes.qos import COMMAND_QOS, INSTRUCTION_QOS, SENSOR_QOS
from rt_ros.paths import config_dir
from rt_ros.sim.camera_rig import rig_for_model

VIDEO_WIDTH_PX = 640
# Wall-clock allowance per policy step before the demo gives up on a stalled pipeline.
STEP_ALLOWANCE_S = 5.0


@dataclass(frozen=True)
class DemoSettings:
    """What `rt-ros demo` runs."""

    model_path: Path
    task: str = "pick"
    seed: int = 0
    split: str = "any"  # any, seen, unseen_paraphrase, unseen_combination
    instruction: str | None = None  # None: the task's own instruction
    max_steps: int | None = None  # None: the task family's budget
    control_rate_hz: float = 3.0
    # ONNX Runtime threads of the policy node (0: one per core; 1 when episodes run side by side).
    policy_threads: int = 0
    out_dir: Path = Path("runs/demo")
    viewer: bool = False
    # A policy server (rt-ros serve) the policy node asks instead of running the bundle itself.
    remote_url: str | None = None
    # What spins the three nodes (the policy node's `executor` values). Through the nodes on 30
    # seen seeds, run side by side: events 8/30 successes, multi_threaded 6/30.
    executor: str = "events"
    # The sim driver's head camera rig (rt_ros.sim.camera_rig); None: the one the model learnt
    # from (its manifest says; a served model's stays on the server: the default rig).
    camera_rig: str | None = None


STORYBOARD_PANELS = 4  # frames of the episode in storyboard.png


@dataclass(frozen=True)
class NodeEpisode:
    """How one episode through the nodes went (rt-ros demo and rt-ros eval)."""

    instruction: str
    success: bool
    steps: int
    terminated_by_policy: bool
    untrained_model: bool
    latency_ms: dict[str, tuple[float, float]]
    frames: int
    wall_time_s: float
    last_frame: np.ndarray | None
    timing: EpisodeTiming  # whether the machine kept the nodes' timing
    camera_rig: str  # the sim head camera it was seen through


@dataclass(frozen=True)
class DemoSummary:
    """What happened, for the console and summary.json."""

    task: str
    seed: int
    instruction: str
    success: bool
    steps: int
    terminated_by_policy: bool
    untrained_model: bool
    image_to_command_ms_p50: float
    image_to_command_ms_p99: float
    policy_step_ms_p50: float
    video: str
    frames: int
    wall_time_s: float
    # What kept the nodes from their timing (empty: nothing): the machine, not the model.
    timing_problems: list[str]
    camera_rig: str


class _Recorder(Node):
    """Says the instruction; keeps the newest commands and writes annotated camera frames."""

    def __init__(self, instruction: str, video_path: Path, fps: float) -> None:
        super().__init__("rt_ros_demo_recorder")
        self.instruction = instruction
        self._lock = threading.Lock()
        self.steps = 0
        self.mode = "-"
        self.terminated = False
        self.arm = np.zeros(6)
        self.base = np.zeros(3)
        self.gripper = float("nan")
        self.frames = 0
        self.last_frame: np.ndarray | None = None
        self._writer = imageio.get_writer(
            str(video_path), fps=fps, codec="libx264", macro_block_size=1, quality=7
        )
        self._say = self.create_publisher(String, "instruction", INSTRUCTION_QOS)
        self.create_subscription(Image, "camera/image_raw", self._on_frame, SENSOR_QOS)
        self.create_subscription(TwistStamped, "cmd/arm", self._on_arm, COMMAND_QOS)
        self.create_subscription(TwistStamped, "cmd/base", self._on_base, COMMAND_QOS)
        self.create_subscription(Float64, "cmd/gripper", self._on_gripper, COMMAND_QOS)
        self.create_subscription(String, "cmd/mode", self._on_mode, COMMAND_QOS)

    def say_instruction(self) -> None:
        self._say.publish(String(data=self.instruction))

    def _on_arm(self, msg: TwistStamped) -> None:
        t = msg.twist
        with self._lock:
            self.arm = np.array(
                [t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z]
            )

    def _on_base(self, msg: TwistStamped) -> None:
        with self._lock:
            self.base = np.array([msg.twist.linear.x, msg.twist.linear.y, msg.twist.angular.z])

    def _on_gripper(self, msg: Float64) -> None:
        with self._lock:
            self.gripper = msg.data

    def _on_mode(self, msg: String) -> None:
        # The policy publishes the mode last for every step, so it counts the steps.
        with self._lock:
            self.mode = msg.data
            self.steps += 1
            self.terminated = self.terminated or msg.data == "terminate"

    def _on_frame(self, msg: Image) -> None:
        # Text needs pixels: the video is the camera frame enlarged to at least 640 px wide.
        rgb = image_msg_to_rgb(msg)
        zoom = max(1, round(VIDEO_WIDTH_PX / rgb.shape[1]))
        canvas = cv2.resize(
            rgb, (rgb.shape[1] * zoom, rgb.shape[0] * zoom), interpolation=cv2.INTER_LINEAR
        )
        with self._lock:
            lines = [
                self.instruction,
                f"step {self.steps}  mode {self.mode}  gripper {self.gripper:+.2f}",
                "arm m/s "
                + " ".join(f"{v:+.2f}" for v in self.arm[:3])
                + "  rad/s "
                + " ".join(f"{v:+.2f}" for v in self.arm[3:]),
                "base m/s "
                + " ".join(f"{v:+.2f}" for v in self.base[:2])
                + f"  rad/s {self.base[2]:+.2f}",
            ]
        # White text on a darkened band: a black outline drawn thicker would drift (Hershey
        # glyph advances grow with thickness).
        band_px = 22 * len(lines) + 8
        canvas[:band_px] = (canvas[:band_px] * 0.4).astype(np.uint8)
        for row, text in enumerate(lines):
            cv2.putText(
                canvas, text, (8, 22 * (row + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                (255, 255, 255), 1, cv2.LINE_AA,
            )  # fmt: skip
        self._writer.append_data(canvas)
        with self._lock:
            self.frames += 1
            self.last_frame = canvas

    def close(self) -> None:
        self._writer.close()


def write_storyboard(video_path: Path, out_path: Path, panels: int = STORYBOARD_PANELS) -> None:
    """`panels` frames of the video, evenly spaced from the first to the last, at half size in
    a grid of two columns: the episode at a glance."""
    # A comprehension, not list(): the ffmpeg reader reports an infinite length.
    frames = [frame for frame in imageio.get_reader(str(video_path))]
    if not frames:
        return
    picks = np.linspace(0, len(frames) - 1, min(panels, len(frames))).round().astype(int)
    small = [
        cv2.resize(frames[i], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for i in picks
    ]
    small += [np.zeros_like(small[0])] * (-len(small) % 2)
    grid = np.vstack([np.hstack(small[row : row + 2]) for row in range(0, len(small), 2)])
    cv2.imwrite(str(out_path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def run_demo(settings: DemoSettings, on_step=None) -> DemoSummary:
    """Run one episode; writes `demo.mp4`, `storyboard.png` (frames across the episode),
    `last_frame.png` and `summary.json` to out_dir."""
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    video_path = settings.out_dir / "demo.mp4"
    episode = run_node_episode(settings, video_path, on_step)
    if episode.last_frame is not None:
        cv2.imwrite(
            str(settings.out_dir / "last_frame.png"),
            cv2.cvtColor(episode.last_frame, cv2.COLOR_RGB2BGR),
        )
        write_storyboard(video_path, settings.out_dir / "storyboard.png")
    summary = DemoSummary(
        task=settings.task,
        seed=settings.seed,
        instruction=episode.instruction,
        success=episode.success,
        steps=episode.steps,
        terminated_by_policy=episode.terminated_by_policy,
        untrained_model=episode.untrained_model,
        image_to_command_ms_p50=round(episode.latency_ms["image_to_command"][0], 2),
        image_to_command_ms_p99=round(episode.latency_ms["image_to_command"][1], 2),
        policy_step_ms_p50=round(episode.latency_ms["policy_step"][0], 2),
        video=str(video_path),
        frames=episode.frames,
        wall_time_s=episode.wall_time_s,
        timing_problems=episode.timing.problems(),
        camera_rig=episode.camera_rig,
    )
    (settings.out_dir / "summary.json").write_text(json.dumps(asdict(summary), indent=2))
    return summary


def run_node_episode(settings: DemoSettings, video_path: Path, on_step=None) -> NodeEpisode:
    """One episode through the driver (sim backend) and the policy node in one executor; the
    annotated head camera goes to `video_path`. rclpy is initialised and shut down here."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    config = config_dir()
    rig = rig_for_model(settings.camera_rig, None if settings.remote_url else settings.model_path)
    rclpy.init()
    try:
        driver = DriverNode(
            cli_args=[
                "--ros-args",
                "--params-file", str(config / "driver.yaml"),
                "--params-file", str(config / "sim.yaml"),
                "-p", f"sim.task:={settings.task}",
                "-p", f"sim.seed:={settings.seed}",
                "-p", f"sim.split:={settings.split}",
                "-p", f"sim.camera_rig:={rig}",
            ]
        )  # fmt: skip
        if not driver.configure_and_activate():
            raise RuntimeError("the driver on the sim backend did not start; see the log above")
        backend = driver.backend
        if backend is None or backend.task is None:
            raise RuntimeError("the driver did not start its sim backend; see the log above")
        instruction = settings.instruction or backend.task.instruction
        remote = (
            ["-p", "inference:=remote", "-p", f"remote.url:={settings.remote_url}"]
            if settings.remote_url
            else []
        )
        policy = PolicyNode(
            cli_args=[
                "--ros-args",
                "--params-file", str(config / "policy.yaml"),
                "-p", f"model_path:={settings.model_path}",
                "-p", f"control_rate_hz:={float(settings.control_rate_hz)!r}",
                "-p", f"intra_op_threads:={settings.policy_threads}",
                *remote,
            ]
        )  # fmt: skip
        recorder = _Recorder(instruction, video_path, backend.config.camera_rate_hz)
        max_steps = settings.max_steps or backend.task.max_steps
        # A served model's manifest stays on the server; only a local bundle is checked here.
        untrained = policy.remote is None and policy.policy.bundle.manifest.untrained
        executor = make_executor(settings.executor)
        for node in (driver, policy, recorder):
            executor.add_node(node)
        stop_spinning = threading.Event()

        def spin() -> None:
            while not stop_spinning.is_set():
                executor.spin_once(timeout_sec=0.05)

        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()
        viewer = _open_viewer(backend) if settings.viewer else None
        started = time.monotonic()
        recorder.say_instruction()
        deadline = started + 30.0 + max_steps * STEP_ALLOWANCE_S
        while time.monotonic() < deadline:
            with recorder._lock:
                steps, terminated = recorder.steps, recorder.terminated
            if on_step is not None:
                on_step(steps, max_steps)
            if terminated or steps >= max_steps:
                break
            if viewer is not None:
                viewer.sync()
            time.sleep(0.05)
        # Stop dispatching, let callbacks in flight finish, then take the nodes out.
        stop_spinning.set()
        spinner.join(5.0)
        executor.shutdown()
        driver.trigger_deactivate()  # the robot stops; physics is no longer stepped
        success = bool(backend.task.success(backend.world))
        recorder.close()
        wall_time_s = round(time.monotonic() - started, 2)
        policy_counts, command_counts = policy.counts(), driver.command_counts()
        timing = EpisodeTiming(
            steps=policy_counts["steps"],
            stale_ticks=policy_counts["stale_ticks"],
            held_ticks=policy_counts["held_ticks"],
            missed_ticks=policy_counts["missed_ticks"],
            frames_rejected_stale=policy_counts["frames_rejected_stale"],
            commands_rejected_stale=command_counts.get("rejected_stale", 0),
            camera_frames=recorder.frames,
            camera_rate_hz=backend.config.camera_rate_hz,
            wall_time_s=wall_time_s,
        )
        episode = NodeEpisode(
            instruction=instruction,
            success=success,
            steps=min(recorder.steps, max_steps),
            terminated_by_policy=recorder.terminated,
            untrained_model=untrained,
            latency_ms=policy.latency_ms(),
            frames=recorder.frames,
            wall_time_s=wall_time_s,
            last_frame=recorder.last_frame,
            timing=timing,
            camera_rig=rig,
        )
        if viewer is not None:
            viewer.close()
        for node in (recorder, policy, driver):
            node.destroy_node()
        return episode
    finally:
        rclpy.try_shutdown()


def _open_viewer(backend):
    """MuJoCo's passive viewer on the simulated world, where a display exists."""
    if "DISPLAY" not in os.environ:
        raise RuntimeError("--viewer needs a display (DISPLAY is not set); the video is written")
    import mujoco.viewer

    return mujoco.viewer.launch_passive(backend.world.model, backend.world.data)
