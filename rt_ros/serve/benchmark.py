"""`rt-ros bench-serve`: simulated robots stepping against one policy server, batching on and off.

Each robot is a RemotePolicy (the policy node's own client) stepping at its control rate with a
per-step deadline, its ticks spread over the period. For each server setting the same robots run
for the same time: end-to-end latency (the robot's step call: JPEG encoding, HTTP, server), the
server's own time per step, deadline misses, and the batch sizes the server formed. A closed-loop
phase then has every robot step as fast as answers come, which measures throughput.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import httpx
import numpy as np

from rt_ros.runtime.errors import RemotePolicyError
from rt_ros.runtime.remote_policy import RemoteConfig, RemotePolicy
from rt_ros.runtime.step_protocol import METRICS_PATH
from rt_ros.serve.process import ServerProcess

INSTRUCTION = "pick coke can"
# Camera-like frames: smooth images (JPEG of noise is unlike any camera's).
FRAME_SHAPE = (240, 320, 3)
FRAMES_PER_ROBOT = 8
# Server settings compared, by name: the arguments of `rt-ros serve`.
SETTINGS = {
    "batching, 2 ms wait": ("--max-batch-size", "8", "--max-wait-ms", "2"),
    "batching, no wait": ("--max-batch-size", "8", "--max-wait-ms", "0"),
    "one at a time": ("--no-batching",),
}


@dataclass
class RobotRecord:
    end_to_end_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    misses: int = 0
    skipped: int = 0  # misses because the previous request was still out (none sent)
    steps: int = 0


@dataclass(frozen=True)
class ServeBenchmark:
    """One server setting under the robots' load."""

    setting: str
    robots: int
    rate_hz: float
    duration_s: float
    deadline_ms: float
    steps: int
    misses: int  # steps without an answer within the deadline (not in the latencies)
    skipped: int  # of which no request was sent: the robot's previous one was still out
    end_to_end_ms_p50: float
    end_to_end_ms_p99: float
    server_ms_p50: float
    server_ms_p99: float
    mean_batch_size: float
    closed_loop_steps_per_s: float


def _frames(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(FRAMES_PER_ROBOT):
        small = rng.integers(0, 256, (15, 20, 3), dtype=np.uint8)
        frames.append(cv2.resize(small, FRAME_SHAPE[1::-1], interpolation=cv2.INTER_CUBIC))
    return frames


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def _batch_totals(url: str) -> tuple[float, float]:
    text = httpx.get(url + METRICS_PATH, timeout=10.0).text
    found = {}
    for name in ("rt_ros_batch_size_sum", "rt_ros_batch_size_count"):
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        found[name] = float(match.group(1)) if match else 0.0
    return found["rt_ros_batch_size_sum"], found["rt_ros_batch_size_count"]


def _robot(
    url: str,
    index: int,
    robots: int,
    rate_hz: float,
    deadline_s: float,
    until_s: float,
    paced: bool,
    record: RobotRecord,
) -> None:
    policy = RemotePolicy(RemoteConfig(url, deadline_s=deadline_s))
    policy.reset(INSTRUCTION)
    frames = _frames(index)
    period_s = 1.0 / rate_hz
    next_s = time.monotonic() + period_s * index / robots  # ticks spread over the period
    step = 0
    while True:
        if paced:
            pause_s = next_s - time.monotonic()
            if pause_s > 0:
                time.sleep(pause_s)
            next_s += period_s
        started_s = time.monotonic()
        if started_s >= until_s:
            break
        record.steps += 1
        try:
            policy.step(frames[step % len(frames)], started_s)
        except RemotePolicyError:
            record.misses += 1
        else:
            record.end_to_end_ms.append((time.monotonic() - started_s) * 1e3)
            record.server_ms.append(policy.last_timings.transformer_ms)
        step += 1
    record.skipped = policy.counts["busy"]
    policy.close()


def _run_robots(
    url: str, robots: int, rate_hz: float, deadline_s: float, duration_s: float, paced: bool
) -> list[RobotRecord]:
    records = [RobotRecord() for _ in range(robots)]
    until_s = time.monotonic() + duration_s
    threads = [
        threading.Thread(
            target=_robot,
            args=(url, i, robots, rate_hz, deadline_s, until_s, paced, records[i]),
            daemon=True,
        )
        for i in range(robots)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return records


def _summary(
    setting: str,
    records: list[RobotRecord],
    closed: list[RobotRecord],
    batches: tuple[float, float],
    robots: int,
    rate_hz: float,
    duration_s: float,
    deadline_s: float,
    closed_loop_s: float,
) -> ServeBenchmark:
    end_to_end = [v for r in records for v in r.end_to_end_ms]
    server_ms = [v for r in records for v in r.server_ms]
    batched_steps, batch_count = batches
    answered_closed = sum(len(r.end_to_end_ms) for r in closed)
    return ServeBenchmark(
        setting=setting,
        robots=robots,
        rate_hz=rate_hz,
        duration_s=duration_s,
        deadline_ms=deadline_s * 1e3,
        steps=sum(r.steps for r in records),
        misses=sum(r.misses for r in records),
        skipped=sum(r.skipped for r in records),
        end_to_end_ms_p50=_percentile(end_to_end, 50),
        end_to_end_ms_p99=_percentile(end_to_end, 99),
        server_ms_p50=_percentile(server_ms, 50),
        server_ms_p99=_percentile(server_ms, 99),
        mean_batch_size=batched_steps / batch_count if batch_count else math.nan,
        closed_loop_steps_per_s=answered_closed / closed_loop_s if closed_loop_s else math.nan,
    )


def run_benchmark(
    model: Path,
    robots: int = 8,
    rate_hz: float = 5.0,
    duration_s: float = 120.0,
    deadline_s: float | None = None,
    closed_loop_s: float = 20.0,
    rounds: int = 4,
    extra_server_args: Sequence[str] = (),
    warmup_s: float = 3.0,
) -> list[ServeBenchmark]:
    """Every setting in SETTINGS, each on its own server (all started first, idle when not
    measured), measured in alternating rounds so that a machine's changing load hits all alike:
    `duration_s` paced and `closed_loop_s` closed-loop per setting in all."""
    deadline_s = deadline_s if deadline_s is not None else 0.5 / rate_hz
    servers = {
        name: ServerProcess(model, [*args, *extra_server_args]) for name, args in SETTINGS.items()
    }
    paced: dict[str, list[RobotRecord]] = {name: [] for name in SETTINGS}
    closed: dict[str, list[RobotRecord]] = {name: [] for name in SETTINGS}
    batches = dict.fromkeys(SETTINGS, (0.0, 0.0))
    try:
        for server in servers.values():
            server.start()
            _run_robots(server.url, robots, rate_hz, deadline_s, warmup_s, paced=True)
        for _ in range(rounds):
            for name, server in servers.items():
                before = _batch_totals(server.url)
                paced[name] += _run_robots(
                    server.url, robots, rate_hz, deadline_s, duration_s / rounds, paced=True
                )
                after = _batch_totals(server.url)
                total = batches[name]
                batches[name] = (total[0] + after[0] - before[0], total[1] + after[1] - before[1])
            for name, server in servers.items():
                closed[name] += _run_robots(
                    server.url, robots, rate_hz, 10.0, closed_loop_s / rounds, paced=False
                )
    finally:
        for server in servers.values():
            server.stop()
    return [
        _summary(
            name, paced[name], closed[name], batches[name], robots, rate_hz, duration_s,
            deadline_s, closed_loop_s,
        )
        for name in SETTINGS
    ]  # fmt: skip
