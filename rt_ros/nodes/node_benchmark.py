"""Image-to-command latency, control-rate stability and frame delivery through a policy node.

`rt-ros bench-node` starts the policy node as its own process with config/policy.yaml, a camera
as another (rt_ros.nodes.bench_camera: 640x480 rgb8 at 30 Hz), and plays the instruction and
reads back the commands and the node's /diagnostics from this one, all over DDS on loopback.
Node overhead = time in the control tick outside the Policy step (frame conversion, action ->
commands, publishing), as the node measures it; the client side adds the latency from frame stamp
to command arrival, which includes the wait for the next tick. Frame delivery = frames the node
received / frames the camera published, over the camera's whole run; both processes get the
chosen Fast DDS profile (none: Fast DDS's defaults), as a launch file gives it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from rt_ros.nodes.bench_camera import PUBLISHED_LINE, STARTED_LINE
from rt_ros.nodes.qos import COMMAND_QOS, INSTRUCTION_QOS, STATUS_QOS
from rt_ros.paths import config_dir

INSTRUCTION = "pick coke can"
WARMUP_S = 8.0
# Where Fast DDS looks for its XML profile: version 3, version 2.
DDS_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
# rmw_fastrtps takes the profile's history memory policy (config/fastdds.xml) only with this.
DDS_QOS_FROM_XML = "RMW_FASTRTPS_USE_QOS_FROM_XML"
# How long the node and the camera get to start (a bundle loads in seconds on a busy machine).
START_TIMEOUT_S = 120.0
DIAGNOSTICS_PERIOD_S = 0.5


@dataclass
class NodeBenchResult:
    """What one run measured; `status` is the node's last /diagnostics key/values."""

    name: str
    control_rate_hz: float
    duration_s: float
    frame_shape: tuple[int, int, int]
    status: dict[str, str]
    missed_ticks: int
    steps: int
    client_latency_ms: list[float] = field(default_factory=list)
    dds_profile: str = "none"
    frames_published: int = 0

    def client_percentile(self, q: float) -> float:
        if not self.client_latency_ms:
            return float("nan")
        return float(np.percentile(self.client_latency_ms, q))

    def node_ms(self, stage: str, q: int) -> float:
        return float(self.status.get(f"{stage}_ms_p{q}", "nan"))

    @property
    def longest_frame_gap_ms(self) -> float:
        return float(self.status.get("frame_interval_ms_max", "nan"))

    @property
    def frames_received(self) -> int:
        return int(self.status.get("frames_received", 0))

    @property
    def delivered(self) -> float:
        """The fraction of published frames the node received."""
        return self.frames_received / self.frames_published if self.frames_published else 0.0


def policy_node_argv(bundle: Path, control_rate_hz: float, *overrides: str) -> list[str]:
    """The command line of a policy node on `bundle` with config/policy.yaml and parameter
    `overrides` (`name:=value`)."""
    return [
        sys.executable,
        "-m",
        "rt_ros.nodes.policy_node",
        "--ros-args",
        "--params-file",
        str(config_dir() / "policy.yaml"),
        "-p",
        f"model_path:={bundle}",
        "-p",
        f"control_rate_hz:={float(control_rate_hz)!r}",
        *(item for override in overrides for item in ("-p", override)),
    ]


def dds_environment(profile: Path | None) -> dict[str, str]:
    """This process's environment with `profile` as the Fast DDS profile (None: none at all)."""
    env = dict(os.environ)
    for name in (*DDS_PROFILE_VARIABLES, DDS_QOS_FROM_XML):
        env.pop(name, None)
    if profile is not None:
        env.update(dict.fromkeys(DDS_PROFILE_VARIABLES, str(profile)), **{DDS_QOS_FROM_XML: "1"})
    return env


class PolicyNodeClient:
    """A node in this process's own context that talks to a policy node: the instruction out,
    arm commands and the policy's /diagnostics status in, spun on a thread of its own.
    Subclasses add endpoints and override `_on_command`; set their attributes before this
    __init__, which starts spinning."""

    def __init__(self, name: str) -> None:
        self.context = Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self.context)
        self.instruction = self.node.create_publisher(String, "instruction", INSTRUCTION_QOS)
        self.lock = threading.Lock()
        self.status: dict[str, str] = {}
        self.node.create_subscription(TwistStamped, "cmd/arm", self._on_command, COMMAND_QOS)
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diagnostics, STATUS_QOS
        )
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self._executor.spin_once(timeout_sec=0.05)

    def now_s(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _on_command(self, msg: TwistStamped) -> None:
        """One arm command arrived (called on the spin thread)."""

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(": policy"):
                with self.lock:
                    self.status = {kv.key: kv.value for kv in status.values}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class _BenchClient(PolicyNodeClient):
    """Stamp-to-arrival latency of every arm command."""

    def __init__(self) -> None:
        # Frame stamp -> command arrival, per command (ms); one machine, one clock.
        self.latency_ms: list[float] = []
        super().__init__("rt_ros_bench_client")

    def _on_command(self, msg: TwistStamped) -> None:
        stamp_s = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self.lock:
            self.latency_ms.append((self.now_s() - stamp_s) * 1e3)


class _Camera:
    """The camera process; its output lines are read as they come."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.strip())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, prefix: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = [line for line in self.lines if line.startswith(prefix)]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (
                    self.popen.poll() is not None and not self._reader.is_alive()
                ):
                    raise RuntimeError(
                        f"camera printed no {prefix!r} line:\n" + "\n".join(self.lines)
                    )
                self._changed.wait(min(remaining, 0.1))


def run_node_benchmark(
    name: str,
    bundle: Path,
    control_rate_hz: float,
    duration_s: float,
    camera_rate_hz: float = 30.0,
    frame_shape: tuple[int, int, int] = (480, 640, 3),
    dds_profile: Path | None = None,
    inference: Sequence[str] = (),
) -> NodeBenchResult:
    """Start a policy node on `bundle` and a camera, drive them for warm-up + `duration_s`,
    collect figures. `dds_profile`: the Fast DDS profile both processes load (None: none).
    `inference`: node parameter overrides, `name:=value` (e.g. `precision:=bf16`)."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env = dds_environment(dds_profile)
    # Every step and every frame interval of the measured time fits in the latency window.
    window = max(10, int(max(control_rate_hz, camera_rate_hz) * duration_s))
    argv = policy_node_argv(
        bundle,
        control_rate_hz,
        f"latency_window_size:={window}",
        f"diagnostics_period_s:={DIAGNOSTICS_PERIOD_S!r}",
        *inference,
    )
    height, width, _ = frame_shape
    camera_argv = [
        sys.executable,
        "-m",
        "rt_ros.nodes.bench_camera",
        f"--rate-hz={camera_rate_hz!r}",
        f"--width={width}",
        f"--height={height}",
        f"--duration-s={WARMUP_S + duration_s!r}",
        f"--wait-s={START_TIMEOUT_S!r}",
    ]
    with tempfile.TemporaryFile("w+") as node_log:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=node_log)
        client = _BenchClient()
        camera: _Camera | None = None
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while client.instruction.get_subscription_count() == 0:
                if process.poll() is not None or time.monotonic() > deadline:
                    node_log.seek(0)
                    raise RuntimeError(f"policy node did not come up:\n{node_log.read()}")
                time.sleep(0.05)
            client.instruction.publish(String(data=INSTRUCTION))
            camera = _Camera(camera_argv, env)
            camera.wait_for_line(STARTED_LINE, START_TIMEOUT_S)
            time.sleep(WARMUP_S)
            with client.lock:
                baseline = dict(client.status)
                client.latency_ms.clear()
            time.sleep(duration_s)
            with client.lock:
                status = dict(client.status)
                latency_ms = list(client.latency_ms)
            published_line = camera.wait_for_line(PUBLISHED_LINE, START_TIMEOUT_S)
            frames_published = int(published_line.split()[2])
            time.sleep(2 * DIAGNOSTICS_PERIOD_S)  # the node's count after the last frame
            with client.lock:
                status.update(
                    {k: v for k, v in client.status.items() if k.startswith("frame_interval")},
                    frames_received=client.status.get("frames_received", "0"),
                )
        finally:
            client.close()
            if camera is not None and camera.popen.poll() is None:
                camera.popen.terminate()
                camera.popen.wait(10.0)
            process.terminate()
            process.wait(10.0)
    missed = int(status.get("missed_ticks", 0)) - int(baseline.get("missed_ticks", 0))
    steps = int(status.get("steps", 0)) - int(baseline.get("steps", 0))
    return NodeBenchResult(
        name,
        control_rate_hz,
        duration_s,
        frame_shape,
        status,
        missed,
        steps,
        latency_ms,
        dds_profile.name if dds_profile is not None else "none",
        frames_published,
    )
