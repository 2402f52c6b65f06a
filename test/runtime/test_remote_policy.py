"""The remote policy against test doubles of an OpenVLA and an RT-2 text server (those models
cannot run here): the request they get, their answers mapped by an action-space profile, strict
decoding, errors and deadlines. rt_ros's own server is tested for real in test/serve."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

pytest.importorskip("httpx", reason="the remote policy needs the serve extra (httpx)")

from rt_ros.runtime.errors import (
    ActionDecodeError,
    ConfigError,
    InstructionError,
    RemotePolicyError,
)
from rt_ros.runtime.openvla_protocol import array_from_json, array_to_json
from rt_ros.runtime.remote_policy import RemoteConfig, RemotePolicy


class _Double:
    """A tiny HTTP server: POST /act answers whatever `answer` holds, after `delay_s`."""

    def __init__(self) -> None:
        self.answer: object = None
        self.status = 200
        self.delay_s = 0.0
        self.requests: list[tuple[dict, dict]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                double.requests.append((json.loads(body), dict(self.headers)))
                time.sleep(double.delay_s)
                data = json.dumps(double.answer).encode()
                self.send_response(double.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                data = json.dumps(double.answer).encode()
                self.send_response(double.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def double() -> Iterator[_Double]:
    server = _Double()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _policy(double: _Double, kind: str, **fields) -> RemotePolicy:
    policy = RemotePolicy(RemoteConfig(double.url, kind=kind, deadline_s=10.0, **fields))
    policy.reset("put the cup on the plate")
    return policy


FRAME = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def test_openvla_request_and_answer(double: _Double) -> None:
    double.answer = array_to_json(np.array([0.1, -0.2, 0.05, 0.0, 0.1, -0.1, 1.0]))
    policy = _policy(double, "openvla", token="abc")
    action = policy.step(FRAME, 1.0)
    request, headers = double.requests[0]
    assert request["instruction"] == "put the cup on the plate"
    image = array_from_json(request["image"], "image", 224 * 224 * 3)
    assert image.shape == (224, 224, 3)
    assert image.dtype == np.uint8
    assert headers["authorization"] == "Bearer abc"
    assert action.role("arm.linear.y") == pytest.approx(-0.2)
    assert action.role("arm.angular.z") == pytest.approx(-0.1)
    assert action.role("gripper") == 1.0  # openvla_7d: +1 opens (gripper_close_sign -1)
    assert action.mode is None


def test_openvla_values_beyond_the_profile_are_clipped(double: _Double) -> None:
    double.answer = [5.0, -5.0, 0.0, 0.0, 0.0, 9.0, 0.0]  # plain lists are accepted too
    action = _policy(double, "openvla").step(FRAME, 1.0)
    assert action.role("arm.linear.x") == 1.0
    assert action.role("arm.linear.y") == -1.0
    assert action.role("arm.angular.z") == pytest.approx(np.pi / 2)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ([0.0] * 6, r"expected 7 values"),
        ([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, float("nan")], r"must be finite"),
        ("0 1 2", r"must be a json_numpy array or nested lists"),
        ({"__numpy__": "AAAA", "dtype": "<f8", "shape": [7]}, r"do not hold"),
    ],
)
def test_bad_openvla_answers_are_refused(double: _Double, answer, message: str) -> None:
    double.answer = answer
    with pytest.raises(ActionDecodeError, match=message):
        _policy(double, "openvla").step(FRAME, 1.0)


def test_rt2_text_answers_decode_strictly(double: _Double) -> None:
    double.answer = {"text": "0 255 0 128 0 255 0 255"}
    policy = _policy(double, "rt2_text")
    action = policy.step(FRAME, 1.0)
    assert action.mode == "arm"
    assert action.role("arm.linear.x") == 1.0
    double.answer = {"text": "0 255\u00a00 128 0 255 0 255"}
    with pytest.raises(ActionDecodeError, match="not a single ASCII space"):
        policy.step(FRAME, 2.0)
    double.answer = {"text": "-0 255 0 128 0 255 0 255"}
    with pytest.raises(ActionDecodeError, match="negative zero"):
        policy.step(FRAME, 3.0)


def test_an_error_status_is_a_remote_error_naming_it(double: _Double) -> None:
    double.status, double.answer = 503, {"detail": "overloaded"}
    policy = _policy(double, "openvla")
    with pytest.raises(RemotePolicyError, match=r"answered 503: .*overloaded"):
        policy.step(FRAME, 1.0)
    assert policy.describe()["remote_failures"] == "1"


def test_deadline_miss_then_busy_then_recovery(double: _Double) -> None:
    """A 1 s answer against a 0.2 s deadline: a miss, then no second request while the first
    is out, and the late answer never comes back as an action."""
    double.answer = [0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    double.delay_s = 1.0
    policy = RemotePolicy(RemoteConfig(double.url, kind="openvla", deadline_s=0.2))
    policy.reset("wave")
    with pytest.raises(RemotePolicyError, match="within the deadline of 200 ms"):
        policy.step(FRAME, 1.0)
    with pytest.raises(RemotePolicyError, match="previous request is still out"):
        policy.step(FRAME, 2.0)
    assert len(double.requests) == 1
    time.sleep(1.5)
    double.delay_s = 0.0
    double.answer = [0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    action = policy.step(FRAME, 3.0)
    assert action.role("arm.linear.x") == pytest.approx(0.1, abs=0.01)
    assert policy.counts["deadline_misses"] == 1
    assert policy.counts["busy"] == 1


def test_step_before_reset_and_bad_config() -> None:
    policy = RemotePolicy(RemoteConfig("http://127.0.0.1:9", kind="openvla"))
    with pytest.raises(InstructionError):
        policy.step(FRAME, 1.0)
    with pytest.raises(InstructionError):
        policy.reset("  ")
    with pytest.raises(ConfigError, match=r"remote\.url must be an http"):
        RemoteConfig("ftp://x")
    with pytest.raises(ConfigError, match=r"remote\.kind must be one of"):
        RemoteConfig("http://x", kind="rt3")
    with pytest.raises(ConfigError, match=r"remote\.deadline_s"):
        RemoteConfig("http://x", deadline_s=0.0)


def test_an_unreachable_server_is_an_error_at_once() -> None:
    policy = RemotePolicy(RemoteConfig("http://127.0.0.1:9", deadline_s=5.0))
    policy.reset("wave")
    started = time.monotonic()
    with pytest.raises(RemotePolicyError, match="unreachable"):
        policy.step(FRAME, 1.0)
    assert time.monotonic() - started < 5.0


@pytest.mark.parametrize(
    "info",
    [
        {"history_length": 6},
        {"action_space": {"name": "x"}, "history_length": 6},
        "not an object",
    ],
)
def test_an_rt_ros_server_with_unreadable_info_is_a_remote_error(double: _Double, info) -> None:
    double.answer = info
    policy = _policy(double, "rt_ros")
    with pytest.raises(RemotePolicyError, match=r"/v1/info: unreadable answer"):
        policy.step(FRAME, 1.0)
    assert policy.describe()["remote_connected"] == "false"
