"""The policy node with `inference: remote` against a real `rt-ros serve` process, over real DDS
and real HTTP: steps computed by the server, a server killed mid-run (stops, then control
resumes when it returns), a slow server (counted stops, never a late action), /diagnostics."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs rclpy (the ros extra or a ROS 2 install)")
pytest.importorskip("fastapi", reason="the policy server needs the serve extra")

from conftest import claim_domain_id  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from rt_ros.nodes.image_conversion import rgb_to_image_msg  # noqa: E402
from rt_ros.nodes.qos import INSTRUCTION_QOS, SENSOR_QOS, STATUS_QOS  # noqa: E402
from rt_ros.runtime.openvla_protocol import array_to_json  # noqa: E402
from rt_ros.serve.process import ServerProcess  # noqa: E402

pytestmark = pytest.mark.ros

# This module's own ROS domains: the other node tests take 1-60 and the launch tests 71-101;
# above 101 Fast DDS's ports reach into Linux's ephemeral range.
DOMAIN_IDS = range(61, 71)
CONTROL_RATE_HZ = 5.0
CAMERA_RATE_HZ = 10.0
# Generous for a loaded 2-core machine: no test passes or fails on speed below these.
WAIT_S = 30.0


@pytest.fixture(scope="session")
def ros_domain_id() -> Iterator[int]:
    yield from claim_domain_id(DOMAIN_IDS)


@pytest.fixture(scope="module")
def bundle(shipped_bundle: Path) -> Path:
    return shipped_bundle


def seconds(stamp) -> float:
    return Time.from_msg(stamp).nanoseconds * 1e-9


def is_stop(msg: TwistStamped) -> bool:
    t = msg.twist
    return not any((t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z))


class Robot:
    """The test's side of the node: camera, instruction, arm commands, diagnostics."""

    def __init__(self, ros_node) -> None:
        self.ros = ros_node
        self.camera = ros_node.publisher(Image, "camera/image_raw", SENSOR_QOS)
        self.instruction = ros_node.publisher(String, "instruction", INSTRUCTION_QOS)
        self.arm = ros_node.subscribe(TwistStamped, "cmd/arm")
        self.diagnostics = ros_node.subscribe(DiagnosticArray, "/diagnostics", STATUS_QOS)
        self.sent_stamps: set[float] = set()
        rng = np.random.default_rng(0)
        self._frames = [rng.integers(0, 256, (120, 160, 3), np.uint8) for _ in range(4)]

    def frame_msg(self) -> Image:
        stamp = self.ros.stamp()
        self.sent_stamps.add(seconds(stamp))
        return rgb_to_image_msg(self._frames[len(self.sent_stamps) % 4], stamp, "head_camera")

    def start(self, instruction: str = "pick coke can") -> None:
        self.ros.wait_for_subscribers(self.camera)
        self.ros.wait_for_subscribers(self.instruction)
        self.ros.wait_for_publishers(self.arm)
        self.instruction.publish(String(data=instruction))

    def is_action(self, msg: TwistStamped) -> bool:
        """A command computed from one of our frames (stops carry the node's clock instead)."""
        return seconds(msg.header.stamp) in self.sent_stamps

    def status(self, predicate, timeout_s: float = WAIT_S) -> dict[str, str]:
        def values(msg) -> dict[str, str] | None:
            for status in msg.status:
                if "policy" in status.name:
                    return {kv.key: kv.value for kv in status.values}
            return None

        received = self.diagnostics.wait_for(
            lambda m: (v := values(m)) is not None and predicate(v),
            timeout_s,
            len(self.diagnostics),
        )
        return values(received.msg)


@pytest.fixture
def robot(ros_node) -> Robot:
    return Robot(ros_node)


@pytest.fixture
def start_remote_node(start_node):
    def start(url: str, **overrides):
        parameters = {
            "inference": "remote",
            "remote.url": url,
            "control_rate_hz": CONTROL_RATE_HZ,
            **overrides,
        }
        process = start_node("policy_node", params_file="policy.yaml", overrides=parameters)
        process.wait_for_output(r"ready: remote \w+ policy", timeout_s=60.0)
        return process

    return start


def test_the_node_steps_through_the_server_and_survives_its_death(
    bundle, start_remote_node, robot, tmp_path
) -> None:
    server = ServerProcess(bundle, ["--providers", "cpu"], log_path=tmp_path / "serve.log")
    server.start()
    try:
        process = start_remote_node(server.url, **{"remote.deadline_s": 1.0})
        robot.start()
        with robot.ros.repeat(robot.camera, robot.frame_msg, CAMERA_RATE_HZ):
            robot.arm.wait_for(robot.is_action, timeout_s=WAIT_S)
            status = robot.status(lambda v: int(v["remote_answers"]) >= 3)
            assert status["inference"] == "remote"
            assert status["remote_kind"] == "rt_ros"
            assert status["remote_connected"] == "true"
            assert math.isfinite(float(status["network_ms_p50"]))
            assert int(status["steps"]) >= 3

            # The server dies mid-run: every tick from then on publishes a stop.
            killed_s = time.monotonic()
            server.kill()
            mark = len(robot.arm)
            first_stop = robot.arm.wait_for(
                lambda m: is_stop(m) and not robot.is_action(m), timeout_s=WAIT_S, start=mark
            )
            stop_after_s = first_stop.time_s - killed_s
            status = robot.status(lambda v: int(v["remote_stops"]) >= 3)
            assert status["remote_connected"] == "false"
            print(f"first stop {stop_after_s * 1e3:.0f} ms after the server was killed")

            # It comes back on the same port: control resumes on its own.
            server = ServerProcess(
                bundle, ["--providers", "cpu"], port=server.port, log_path=tmp_path / "b.log"
            )
            server.start()
            mark = len(robot.arm)
            robot.arm.wait_for(robot.is_action, timeout_s=WAIT_S, start=mark)
            status = robot.status(lambda v: v["remote_connected"] == "true")
            assert int(status["remote_reconnects"]) >= 1
        assert process.returncode is None
    finally:
        server.stop()


def test_a_slow_server_gives_counted_stops_never_a_late_action(
    bundle, start_remote_node, robot, tmp_path
) -> None:
    """Answers 1 s late against a 0.1 s deadline: only stops go out, each one counted."""
    with ServerProcess(
        bundle,
        ["--providers", "cpu", "--inject-delay-ms", "1000"],
        log_path=tmp_path / "slow.log",
    ) as server:
        process = start_remote_node(server.url, **{"remote.deadline_s": 0.1})
        robot.start()
        with robot.ros.repeat(robot.camera, robot.frame_msg, CAMERA_RATE_HZ):
            status = robot.status(lambda v: int(v["remote_stops"]) >= 8)
        commands = robot.arm.received()
        assert commands
        assert not any(robot.is_action(item.msg) for item in commands), "a late action went out"
        assert all(is_stop(item.msg) for item in commands)
        assert int(status["steps"]) == 0
        assert int(status["remote_deadline_misses"]) >= 1
        assert process.returncode is None


class _OpenVlaDouble:
    """A test double of an OpenVLA server (the model cannot run here): POST /act answers one
    fixed 7-D action."""

    def __init__(self, action: list[float]) -> None:
        body = json.dumps(array_to_json(np.array(action))).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_openvla_server_drives_the_arm_through_its_profile(start_remote_node, robot) -> None:
    """dx 0.02 m per step at 5 Hz is 0.1 m/s along x; the openvla_7d profile's gripper +1 opens."""
    double = _OpenVlaDouble([0.02, 0.0, -0.01, 0.0, 0.0, 0.0, 1.0])
    try:
        start_remote_node(double.url, **{"remote.kind": "openvla", "remote.deadline_s": 1.0})
        robot.start()
        with robot.ros.repeat(robot.camera, robot.frame_msg, CAMERA_RATE_HZ):
            command = robot.arm.wait_for(robot.is_action, timeout_s=WAIT_S).msg
            status = robot.status(lambda v: int(v["remote_answers"]) >= 1)
        assert command.twist.linear.x == pytest.approx(0.02 * CONTROL_RATE_HZ, rel=0.02)
        assert command.twist.linear.z == pytest.approx(-0.01 * CONTROL_RATE_HZ, rel=0.05)
        assert status["remote_kind"] == "openvla"
    finally:
        double.close()
