"""Memory soak of the policy node under hostile input: `rt-ros bench-node --soak`.

Starts the policy node as its own process (config/policy.yaml, raw and CompressedImage topics),
drives it with a normal 640x480 camera and, every `FAULT_PERIOD_S`, one message of the fault
suite in turn: stamps ahead, zero, negative and out of order, JPEG/PNG decompression bombs,
truncated and corrupt JPEG/PNG, bad encodings, steps and sizes, oversized headers, rejected
instructions; an instruction flood every `FLOOD_PERIOD_S` and, with `large_frames`, a real
7680x4320 rgb8 frame (99 MB) every `LARGE_FRAME_PERIOD_S`. The node's resident memory is sampled
from /proc (Linux) and compared between the end of the first minute and the end of the run.
A command, not a test: it runs for minutes.
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from rt_ros.nodes.image_conversion import rgb_to_image_msg
from rt_ros.nodes.node_benchmark import PolicyNodeClient, dds_environment, policy_node_argv
from rt_ros.nodes.qos import SENSOR_QOS

INSTRUCTION = "pick coke can"
COMPRESSED_TOPIC = "camera/image_raw/compressed"
FAULT_PERIOD_S = 0.1
FLOOD_PERIOD_S = 30.0
FLOOD_SIZE = 1000
LARGE_FRAME_PERIOD_S = 60.0
SAMPLE_PERIOD_S = 5.0
# Memory is compared from here on: start-up, the first large frames and caches are behind it.
SETTLED_AFTER_S = 60.0
START_TIMEOUT_S = 120.0
BOMB_SIDE_PX = 30_000


@dataclass
class SoakResult:
    """Resident memory samples (seconds since start, MB) and the node's last counters."""

    duration_s: float
    rss_mb: list[tuple[float, float]] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)
    faults_sent: int = 0
    alive: bool = True

    def rss_at(self, elapsed_s: float) -> float:
        """The first sample taken at or after `elapsed_s` (the last one if none)."""
        return next((mb for t, mb in self.rss_mb if t >= elapsed_s), self.rss_mb[-1][1])

    @property
    def growth_mb(self) -> float:
        """Resident memory at the end minus after the first minute."""
        return self.rss_mb[-1][1] - self.rss_at(min(SETTLED_AFTER_S, self.duration_s / 2))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kilobytes / 1024


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _encoded(extension: str, height: int = 480, width: int = 640) -> bytes:
    image = np.random.default_rng(height).integers(0, 256, (height, width, 3), np.uint8)
    return cv2.imencode(extension, image)[1].tobytes()


def _compressed_payloads() -> list[bytes]:
    """Bombs, truncated and corrupt files, another format, nothing."""
    jpeg, png = bytearray(_encoded(".jpg", 8, 8)), _encoded(".png")
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", BOMB_SIDE_PX, BOMB_SIDE_PX)
    header = struct.pack(">IIBBBBB", BOMB_SIDE_PX, BOMB_SIDE_PX, 8, 2, 0, 0, 0)
    png_bomb = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes((BOMB_SIDE_PX * 3 + 1) * 16)))
        + _png_chunk(b"IEND", b"")
    )
    corrupt = bytearray(png)
    idat = corrupt.index(b"IDAT")
    corrupt[idat + 4 : idat + 40] = bytes(36)
    full_jpeg = _encoded(".jpg")
    return [
        bytes(jpeg),
        png_bomb,
        full_jpeg[: len(full_jpeg) // 2],
        png[: len(png) - 20],
        bytes(corrupt),
        b"GIF89a" + bytes(64),
        b"",
    ]


def _raw(encoding: str, width: int, height: int, step: int, data_len: int) -> Image:
    msg = Image(encoding=encoding, width=width, height=height, step=step)
    msg.data = bytes(data_len)
    return msg


class _SoakClient(PolicyNodeClient):
    """Cameras (raw and compressed) beside the instruction; counts arm commands."""

    def __init__(self) -> None:
        self.commands = 0
        super().__init__("rt_ros_soak_client")
        self.camera = self.node.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
        self.compressed = self.node.create_publisher(CompressedImage, COMPRESSED_TOPIC, SENSOR_QOS)

    def _on_command(self, _msg: TwistStamped) -> None:
        with self.lock:
            self.commands += 1

    def stamp(self, offset_s: float = 0.0) -> Any:
        stamp = self.node.get_clock().now().to_msg()
        nanoseconds = stamp.sec * 1_000_000_000 + stamp.nanosec + round(offset_s * 1e9)
        stamp.sec, stamp.nanosec = divmod(nanoseconds, 1_000_000_000)
        return stamp


def _faults(client: _SoakClient, frames: list[np.ndarray]) -> list[Callable[[], None]]:
    """One message each, sent in turn: every kind of refused frame and instruction."""

    def raw_frame(offset_s: float, sec: int | None = None) -> Callable[[], None]:
        def send() -> None:
            msg = rgb_to_image_msg(frames[0], client.stamp(offset_s), "camera")
            if sec is not None:
                msg.header.stamp.sec, msg.header.stamp.nanosec = sec, 0
            client.camera.publish(msg)

        return send

    def bad_raw(msg: Image) -> Callable[[], None]:
        def send() -> None:
            msg.header.stamp = client.stamp()
            client.camera.publish(msg)

        return send

    def compressed(payload: bytes) -> Callable[[], None]:
        def send() -> None:
            msg = CompressedImage(format="jpeg", data=payload)
            msg.header.stamp = client.stamp()
            client.compressed.publish(msg)

        return send

    def say(text: str) -> Callable[[], None]:
        return lambda: client.instruction.publish(String(data=text))

    return [
        raw_frame(10.0),
        raw_frame(0.3),
        raw_frame(-0.2),  # older than the newest
        raw_frame(0.0, sec=0),
        raw_frame(0.0, sec=-5),
        bad_raw(_raw("yuv422_custom", 8, 4, 24, 96)),
        bad_raw(_raw("rgb8", 8, 4, 24, 10)),
        bad_raw(_raw("rgb8", 0, 0, 0, 0)),
        bad_raw(_raw("rgb8", 8, 4, 4, 16)),
        bad_raw(_raw("rgb8", 7680, 4320, 23040, 16)),
        *(compressed(payload) for payload in _compressed_payloads()),
        say(""),
        say(" \t "),
        say("x" * 100_000),
        say(INSTRUCTION),
    ]


def run_memory_soak(
    bundle: Path,
    control_rate_hz: float,
    duration_s: float,
    camera_rate_hz: float = 30.0,
    large_frames: bool = True,
    dds_profile: Path | None = None,
    progress: Callable[[str], None] = print,
) -> SoakResult:
    """Run the node under the fault mix for `duration_s`; memory samples and final counters."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    argv = policy_node_argv(
        bundle,
        control_rate_hz,
        f"compressed_image_topic:={COMPRESSED_TOPIC}",
        "diagnostics_period_s:=1.0",
    )
    result = SoakResult(duration_s)
    generator = np.random.default_rng(0)
    frames = [generator.integers(0, 256, (480, 640, 3), np.uint8) for _ in range(4)]
    large = generator.integers(0, 256, (4320, 7680, 3), np.uint8) if large_frames else None
    with tempfile.TemporaryFile("w+") as node_log:
        process = subprocess.Popen(
            argv, env=dds_environment(dds_profile), stdout=subprocess.DEVNULL, stderr=node_log
        )
        client = _SoakClient()
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while client.camera.get_subscription_count() == 0:
                if process.poll() is not None or time.monotonic() > deadline:
                    node_log.seek(0)
                    raise RuntimeError(f"policy node did not come up:\n{node_log.read()}")
                time.sleep(0.05)
            client.instruction.publish(String(data=INSTRUCTION))
            faults = cycle(_faults(client, frames))
            start = time.monotonic()
            next_frame = next_fault = next_sample = next_flood = start
            next_large = start + SETTLED_AFTER_S / 2
            sent = 0
            while (now := time.monotonic()) < start + duration_s and process.poll() is None:
                if now >= next_frame:
                    frame = frames[sent % len(frames)]
                    client.camera.publish(rgb_to_image_msg(frame, client.stamp(), "camera"))
                    sent += 1
                    next_frame += 1.0 / camera_rate_hz
                if now >= next_fault:
                    next(faults)()
                    result.faults_sent += 1
                    next_fault += FAULT_PERIOD_S
                if now >= next_flood:
                    for index in range(FLOOD_SIZE):
                        client.instruction.publish(String(data=" " if index % 2 else "x"))
                    client.instruction.publish(String(data=INSTRUCTION))
                    next_flood += FLOOD_PERIOD_S
                if large is not None and now >= next_large:
                    client.camera.publish(rgb_to_image_msg(large, client.stamp(), "camera"))
                    next_large += LARGE_FRAME_PERIOD_S
                if now >= next_sample:
                    elapsed_s = now - start
                    result.rss_mb.append((elapsed_s, rss_mb(process.pid)))
                    with client.lock:
                        commands = client.commands
                    progress(
                        f"{elapsed_s:5.0f} s: node {result.rss_mb[-1][1]:.1f} MB resident, "
                        f"{commands} commands, {result.faults_sent} faults sent"
                    )
                    next_sample += SAMPLE_PERIOD_S
                time.sleep(max(0.0, min(next_frame, next_fault, next_sample) - time.monotonic()))
            result.alive = process.poll() is None
            if result.alive:
                result.rss_mb.append((time.monotonic() - start, rss_mb(process.pid)))
            time.sleep(1.5)  # the last diagnostics
            with client.lock:
                result.status = dict(client.status)
        finally:
            client.close()
            process.terminate()
            process.wait(10.0)
    return result
