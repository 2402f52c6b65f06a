"""`rt-ros serve` as a real process over real HTTP: concurrent robots batched together, the
remote policy's steps, a server killed and restarted, a slow server, the CLI's bind guard."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rt_ros.runtime.errors import FrameError, RemotePolicyError
from rt_ros.runtime.policy import Policy
from rt_ros.runtime.remote_policy import RemoteConfig, RemotePolicy
from rt_ros.serve.process import ServerProcess

INSTRUCTION = "pick up the apple"
# Generous: a step on a loaded 2-core machine may take a second; no test passes on speed.
SLACK_DEADLINE_S = 20.0


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (96, 160, 3), dtype=np.uint8) for _ in range(count)]


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


def test_remote_steps_follow_the_local_policy(server, bundle_dir) -> None:
    """rgb8 frames: the remote policy's window is the local token cache up to float16."""
    remote = RemotePolicy(
        RemoteConfig(server.url, deadline_s=SLACK_DEADLINE_S, frame_encoding="rgb8")
    )
    local = Policy.from_bundle(bundle_dir)
    remote.reset(INSTRUCTION)
    local.reset(INSTRUCTION)
    for index, rgb in enumerate(_frames(8)):
        got = remote.step(rgb, 0.3 * index)
        expected = local.step(rgb, 0.3 * index)
        assert np.abs(np.array(got.tokens) - np.array(expected.tokens)).max() <= 1
        assert got.mode == expected.mode
    assert len(remote._window) == 5  # history_length - 1 earlier frames kept
    assert remote.last_timings.transformer_ms > 0
    assert math.isfinite(remote.last_network_ms)
    assert remote.describe()["remote_answers"] == "8"
    # As Policy: the same stamp again is answered without a request, an older one refused.
    assert remote.step(rgb, 0.3 * 7) is got
    assert remote.describe()["remote_requests"] == "8"
    with pytest.raises(FrameError, match="older than the newest"):
        remote.step(rgb, 0.0)
    remote.close()


def test_concurrent_robots_are_batched(server) -> None:
    """Eight robots stepping at once: the server ran some of their steps in one batch."""
    import httpx

    before = httpx.get(server.url + "/metrics").text

    def robot(seed: int) -> int:
        policy = RemotePolicy(RemoteConfig(server.url, deadline_s=SLACK_DEADLINE_S))
        policy.reset(INSTRUCTION)
        for index, rgb in enumerate(_frames(4, seed)):
            policy.step(rgb, float(index))
        policy.close()
        return policy.counts["answers"]

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(robot, range(8))) == [4] * 8
    after = httpx.get(server.url + "/metrics").text
    batches = _metric(after, "rt_ros_batch_size_count") - _metric(
        before, "rt_ros_batch_size_count"
    )
    steps = _metric(after, "rt_ros_batch_size_sum") - _metric(before, "rt_ros_batch_size_sum")
    assert steps == 32
    assert batches < steps  # at least one batch held more than one robot's step


def test_a_killed_server_gives_errors_then_steps_resume(bundle_dir, tmp_path) -> None:
    process = ServerProcess(bundle_dir, ["--providers", "cpu"], log_path=tmp_path / "a.log")
    process.start()
    policy = RemotePolicy(RemoteConfig(process.url, deadline_s=SLACK_DEADLINE_S))
    policy.reset(INSTRUCTION)
    frames = _frames(6)
    policy.step(frames[0], 0.0)
    policy.step(frames[1], 0.3)
    process.kill()
    with pytest.raises(RemotePolicyError, match="unreachable"):
        policy.step(frames[2], 0.6)
    assert policy.describe()["remote_connected"] == "false"
    with ServerProcess(
        bundle_dir, ["--providers", "cpu"], port=process.port, log_path=tmp_path / "b.log"
    ):
        policy.step(frames[3], 0.9)
        policy.step(frames[4], 1.2)
    assert policy.counts["reconnects"] == 1
    assert policy.describe()["remote_connected"] == "true"
    policy.close()


def test_a_slow_server_misses_deadlines_and_its_late_answers_are_dropped(
    bundle_dir, tmp_path
) -> None:
    """Every answer comes 1.5 s late against a 0.3 s deadline: each step raises, one request is
    out at a time, and no late action is ever returned."""
    with ServerProcess(
        bundle_dir,
        ["--providers", "cpu", "--inject-delay-ms", "1500"],
        log_path=tmp_path / "slow.log",
    ) as slow:
        policy = RemotePolicy(RemoteConfig(slow.url, deadline_s=0.3))
        policy.reset(INSTRUCTION)
        for index, rgb in enumerate(_frames(3)):
            with pytest.raises(RemotePolicyError):
                policy.step(rgb, 0.1 * index)
        assert policy.counts["deadline_misses"] >= 1
        assert policy.counts["deadline_misses"] + policy.counts["busy"] == 3
        assert policy._last_action is None
        assert len(policy._window) == 0
        policy.close()


def test_the_cli_refuses_to_listen_beyond_loopback_without_a_token(bundle_dir) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rt_ros.cli", "serve", "--model", str(bundle_dir),
         "--host", "0.0.0.0", "--port", "1"],
        capture_output=True, text=True, timeout=120, env={"RT_ROS_SERVE_TOKEN": "", "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 2
    assert "give a bearer token" in result.stderr + result.stdout


def test_bench_serve_measures_both_settings(bundle_dir) -> None:
    """A seconds-long run of the benchmark: both settings measured, every step accounted for."""
    from rt_ros.serve.benchmark import SETTINGS, run_benchmark

    results = run_benchmark(
        bundle_dir,
        robots=2,
        rate_hz=5.0,
        duration_s=2.0,
        deadline_s=SLACK_DEADLINE_S,
        closed_loop_s=1.0,
        rounds=1,
        extra_server_args=["--providers", "cpu"],
        warmup_s=0.5,
    )
    assert [result.setting for result in results] == list(SETTINGS)
    for result in results:
        assert result.steps >= 2
        assert result.misses == 0
        assert result.end_to_end_ms_p50 > 0
        assert result.closed_loop_steps_per_s > 0
    assert results[-1].mean_batch_size == 1.0  # one at a time
