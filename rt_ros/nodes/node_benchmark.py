"""Image-to-command latency and control-rate stability through a real policy-node process.

`rt-ros bench-node` starts the policy node as its own process with config/policy.yaml, plays a
640x480 rgb8 camera and an instruction over DDS on loopback, and reads back the commands and the
node's /diagnostics. Node overhead = time in the control tick outside the Policy step (frame
conversion, action -> commands, publishing), as the node measures it; the client side adds the
latency from frame stamp to command arrival, which includes the wait for the next tick.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import Image
from std_msgs.msg import String

from rt_ros.nodes.image_conversion import rgb_to_image_msg
from rt_ros.nodes.qos import COMMAND_QOS, INSTRUCTION_QOS, SENSOR_QOS, STATUS_QOS
from rt_ros.paths import config_dir

INSTRUCTION = "pick coke can"
WARMUP_S = 8.0


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

    def client_percentile(self, q: float) -> float:
        if not self.client_latency_ms:
            return float("nan")
        return float(np.percentile(self.client_latency_ms, q))

    def node_ms(self, stage: str, q: int) -> float:
        return float(self.status.get(f"{stage}_ms_p{q}", "nan"))


class _BenchClient:
    """Camera, instruction, command and diagnostics endpoints in this process's own context."""

    def __init__(self, frame_shape: tuple[int, int, int]) -> None:
        self.context = Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("rt_ros_bench_client", context=self.context)
        self.camera = self.node.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
        self.instruction = self.node.create_publisher(String, "instruction", INSTRUCTION_QOS)
        self.node.create_subscription(TwistStamped, "cmd/arm", self._on_command, COMMAND_QOS)
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diagnostics, STATUS_QOS
        )
        generator = np.random.default_rng(0)
        self._frames = [generator.integers(0, 256, frame_shape, np.uint8) for _ in range(4)]
        self._count = 0
        self.lock = threading.Lock()
        # Frame stamp -> command arrival, per command (ms); one machine, one clock.
        self.latency_ms: list[float] = []
        self.status: dict[str, str] = {}
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
        latency_ms = (self.now_s() - Time.from_msg(msg.header.stamp).nanoseconds * 1e-9) * 1e3
        with self.lock:
            self.latency_ms.append(latency_ms)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(": policy"):
                with self.lock:
                    self.status = {kv.key: kv.value for kv in status.values}

    def publish_frame(self) -> None:
        frame = self._frames[self._count % len(self._frames)]
        self._count += 1
        self.camera.publish(rgb_to_image_msg(frame, self.node.get_clock().now().to_msg(), "cam"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def run_node_benchmark(
    name: str,
    bundle: Path,
    control_rate_hz: float,
    duration_s: float,
    camera_rate_hz: float = 30.0,
    frame_shape: tuple[int, int, int] = (480, 640, 3),
) -> NodeBenchResult:
    """Start a policy node on `bundle`, drive it for warm-up + `duration_s`, collect figures."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    window = max(10, int(control_rate_hz * duration_s))
    argv = [
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
        "-p",
        f"latency_window_size:={window}",
        "-p",
        "diagnostics_period_s:=0.5",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    client = _BenchClient(frame_shape)
    try:
        deadline = time.monotonic() + 120.0
        while client.camera.get_subscription_count() == 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"policy node did not come up:\n{process.stderr.read()}")
            time.sleep(0.05)
        client.instruction.publish(String(data=INSTRUCTION))
        period_s = 1.0 / camera_rate_hz
        start = time.monotonic()
        measure_from = start + WARMUP_S
        baseline: dict[str, str] = {}
        next_frame = start
        while time.monotonic() < measure_from + duration_s:
            now = time.monotonic()
            if not baseline and now >= measure_from:
                with client.lock:
                    baseline = dict(client.status)
                    client.latency_ms.clear()
            if now >= next_frame:
                client.publish_frame()
                next_frame += period_s
            time.sleep(max(0.0, min(next_frame, measure_from + duration_s) - time.monotonic()))
        time.sleep(1.0)  # the last diagnostics
        with client.lock:
            status = dict(client.status)
            latency_ms = list(client.latency_ms)
    finally:
        client.close()
        process.terminate()
        process.wait(10.0)
    missed = int(status.get("missed_ticks", 0)) - int(baseline.get("missed_ticks", 0))
    steps = int(status.get("steps", 0)) - int(baseline.get("steps", 0))
    return NodeBenchResult(
        name, control_rate_hz, duration_s, frame_shape, status, missed, steps, latency_ms
    )
