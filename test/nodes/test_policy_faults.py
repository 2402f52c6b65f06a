"""The policy node's fault suite: what a misconfigured camera, a bad network or a hostile publisher
sends, played at the node as a real process over DDS on loopback (config/policy.yaml, a real
rt1-tiny bundle). For each fault the node must stay alive, count the fault in /diagnostics,
publish a stop within one control period + 100 ms of the moment motion must stop (when its newest
usable frame goes stale) where motion must stop, and resume normal control afterwards.

The driver's side of the suite (e-stop latch, NaN/inf and stale or future commands, gripper
1e308, a SIGKILLed policy) is in test_driver_node.py; the stale camera's stop also in
test_policy_node.py. The 5-minute memory soak is a command, not a test:
`rt-ros bench-node --soak --duration-s 300`.
"""

from __future__ import annotations

import re
import struct
import time
import zlib
from collections.abc import Callable
from contextlib import contextmanager

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="needs rclpy (the ros extra or a ROS 2 install)")

from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from test_policy_node import PolicyHarness, seconds, twist_is_zero  # noqa: E402

from rt_ros.nodes.qos import SENSOR_QOS  # noqa: E402

pytestmark = pytest.mark.ros

CONTROL_RATE_HZ = 5.0
CONTROL_PERIOD_S = 1.0 / CONTROL_RATE_HZ
STOP_MARGIN_S = 0.1
CAMERA_RATE_HZ = 20.0
STALE_TIMEOUT_S = 0.5
COMPRESSED_TOPIC = "camera/image_raw/compressed"
# How long a fault is played when it must stop the robot: the stale timeout, then a few ticks.
FAULT_S = STALE_TIMEOUT_S + 6 * CONTROL_PERIOD_S
# Generous bounds (a shared, noisy machine). The defects blocked the control loop for 15-17 s;
# a loaded 2-core machine was seen holding commands back for 1.4 s (3.3 s during a flood).
MAX_COMMAND_GAP_S = 5.0
MAX_GROWTH_MB = 200.0
BOMB_SIDE_PX = 30_000


# --- hostile frames ------------------------------------------------------------------------------


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb() -> bytes:
    """A PNG of a few hundred bytes whose header declares 30000x30000 rgb8 px."""
    header = struct.pack(">IIBBBBB", BOMB_SIDE_PX, BOMB_SIDE_PX, 8, 2, 0, 0, 0)
    rows = zlib.compress(bytes((BOMB_SIDE_PX * 3 + 1) * 4))
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", rows)
        + png_chunk(b"IEND", b"")
    )


def encoded(extension: str, height: int = 120, width: int = 160) -> bytes:
    image = np.random.default_rng(height).integers(0, 256, (height, width, 3), np.uint8)
    ok, data = cv2.imencode(extension, image)
    assert ok
    return data.tobytes()


def jpeg_bomb() -> bytes:
    """A real JPEG of under a kilobyte whose frame header is rewritten to 30000x30000 px."""
    data = bytearray(encoded(".jpg", 8, 8))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", BOMB_SIDE_PX, BOMB_SIDE_PX)
    return bytes(data)


def corrupt_png() -> bytes:
    data = bytearray(encoded(".png"))
    idat = data.index(b"IDAT")
    data[idat + 4 : idat + 40] = bytes(36)
    return bytes(data)


def raw_image(encoding="rgb8", width=8, height=4, step=None, data_len=None) -> Image:
    msg = Image()
    msg.encoding, msg.width, msg.height = encoding, width, height
    msg.step = step if step is not None else width * 3
    msg.data = bytes(data_len if data_len is not None else msg.step * height)
    return msg


# --- the rig -------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kilobytes / 1024


class FaultRig(PolicyHarness):
    """The harness plus a compressed camera, fault streams, and the suite's assertions."""

    def __init__(self, ros_node, process, compressed_mode: bool) -> None:
        super().__init__(ros_node)
        self.process = process
        self.compressed = ros_node.publisher(CompressedImage, COMPRESSED_TOPIC, SENSOR_QOS)
        self._jpeg = encoded(".jpg")
        # Good frames as JPEG on the CompressedImage topic instead of raw Images.
        self.compressed_mode = compressed_mode

    def good_frame(self) -> Image | CompressedImage:
        """A usable frame stamped now (raw, or JPEG in compressed mode); its stamp is recorded."""
        if not self.compressed_mode:
            return self.frame_msg()
        msg = CompressedImage(format="jpeg", data=self._jpeg)
        msg.header.stamp = self.ros.stamp()
        self.sent_stamps.append(seconds(msg.header.stamp))
        return msg

    @contextmanager
    def camera_running(self):
        publisher = self.compressed if self.compressed_mode else self.camera
        with self.ros.repeat(publisher, self.good_frame, CAMERA_RATE_HZ):
            yield

    @contextmanager
    def playing(self, publisher, make_msg: Callable[[], object], rate_hz: float = CAMERA_RATE_HZ):
        with self.ros.repeat(publisher, make_msg, rate_hz):
            yield

    def wait_commanding(self, after_s: float = 0.0, timeout_s: float = 10.0) -> None:
        """Until a model command arrives computed from a usable frame sent after `after_s`."""
        sent = self.sent_stamps
        self.arm.wait_for(
            lambda m: (stamp := seconds(m.header.stamp)) > after_s and stamp in set(sent),
            timeout_s,
        )

    def start_episode(self) -> None:
        self.wait_connected()
        if self.compressed_mode:
            self.ros.wait_for_subscribers(self.compressed)
        self.say("pick coke can")
        with self.camera_running():
            self.wait_commanding()

    def assert_stops_in_time(self, last_good_s: float, mark: int) -> None:
        """A stop arrives within one control period + 100 ms of the newest usable frame going
        stale (the last good frame sent, or an earlier one if that one was lost)."""
        stale_at_s = last_good_s + STALE_TIMEOUT_S
        stop = self.arm.wait_for(
            lambda m: twist_is_zero(m) and seconds(m.header.stamp) > stale_at_s, 5.0, mark
        )
        arrival_s = self.ros.now_s() - (time.monotonic() - stop.time_s)
        assert arrival_s - stale_at_s <= CONTROL_PERIOD_S + STOP_MARGIN_S, self.process.output

    def assert_no_gap(self, mark: int) -> None:
        """Commands (steps or stops) kept coming at about the control rate: no stalled loop."""
        times = [item.time_s for item in self.arm.received(mark)]
        assert len(times) >= 2
        assert max(np.diff(times)) <= MAX_COMMAND_GAP_S

    def assert_only_good_frames_or_stops(self, mark: int, since_s: float) -> None:
        """Every command from `mark` on was computed from a good frame, or is a stop stamped
        after `since_s`: the model never ran on a refused frame."""
        good = set(self.sent_stamps)
        for item in self.arm.received(mark):
            stamp_s = seconds(item.msg.header.stamp)
            is_stop = twist_is_zero(item.msg) and stamp_s > since_s
            assert stamp_s in good or is_stop, f"a command stamped {stamp_s:.6f} s"

    def resume(self) -> dict[str, str]:
        """A good camera again: the model steps on its frames; the node is alive."""
        resumed_at_s = self.ros.now_s()
        with self.camera_running():
            self.wait_commanding(after_s=resumed_at_s)
        assert self.process.returncode is None
        return self.latest_status(start=len(self.diagnostics))

    def assert_stream_fault(
        self, publisher, make_msgs: list[Callable[[], object]], reason: str
    ) -> dict[str, str]:
        """The camera turns into a stream of refused frames: a stop in time, every refused frame
        counted under `reason` (received == rejected while it lasts), control back afterwards."""
        with self.camera_running():
            self.wait_commanding()
        last_good_s, mark = self.sent_stamps[-1], len(self.arm)
        before = self.status_after(0.1)  # frames still in flight have arrived
        index = iter(range(10**9))
        with self.playing(publisher, lambda: make_msgs[next(index) % len(make_msgs)]()):
            self.assert_stops_in_time(last_good_s, mark)
            time.sleep(FAULT_S - STALE_TIMEOUT_S)
            self.assert_no_gap(mark)
        after = self.status_after(0.3)
        received = int(after["frames_received"]) - int(before["frames_received"])
        rejected = int(after[f"frames_rejected_{reason}"]) - int(
            before[f"frames_rejected_{reason}"]
        )
        assert received > 0
        assert rejected == received, f"every refused frame counted: {after}"
        self.assert_only_good_frames_or_stops(mark, last_good_s)
        assert int(after["stale_ticks"]) > int(before["stale_ticks"])
        return self.resume()


@pytest.fixture
def start_rig(start_node, tiny_bundle, ros_node):
    def start(compressed: bool = False, **overrides) -> FaultRig:
        if compressed:
            overrides["compressed_image_topic"] = COMPRESSED_TOPIC
        parameters = {
            "model_path": str(tiny_bundle),
            "control_rate_hz": CONTROL_RATE_HZ,
            "stale_image_timeout_s": STALE_TIMEOUT_S,
            "diagnostics_period_s": 0.25,
            **overrides,
        }
        process = start_node("policy_node", params_file="policy.yaml", overrides=parameters)
        rig = FaultRig(ros_node, process, compressed)
        process.wait_for_output(r"ready: bundle", timeout_s=60.0)
        rig.start_episode()
        return rig

    return start


# --- stamps --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ahead_s", [10.0, 0.3])
def test_future_stamps_are_refused_and_never_hold_back_later_frames(start_rig, ahead_s):
    """A frame stamped ahead of the clock (beyond max_future_stamp_s, 0.1 s) is refused and
    counted; the frames after it drive the robot as before (once it made the node ignore every
    normal frame for the next 9.5 s). A camera whose every stamp is ahead stops the robot."""
    rig = start_rig()

    def ahead() -> Image:
        msg = rig.frame_msg()
        rig.sent_stamps.pop()  # not a good frame
        msg.header.stamp = rig.ros.stamp(ahead_s)
        return msg

    # Interleaved with the normal camera: nothing stops, nothing is poisoned.
    mark = len(rig.arm)
    with rig.camera_running():
        with rig.playing(rig.camera, ahead, 5.0):
            rig.wait_for_count("frames_rejected_future_stamp", 3, timeout_s=15.0)
        after_s = rig.ros.now_s()
        rig.wait_commanding(after_s=after_s)
    rig.assert_no_gap(mark)
    rig.assert_only_good_frames_or_stops(mark, since_s=0.0)
    assert all(seconds(r.msg.header.stamp) <= rig.ros.now_s() for r in rig.arm.received(mark))
    # Only future stamps: the last good frame goes stale, a stop follows, control comes back.
    status = rig.assert_stream_fault(rig.camera, [ahead], "future_stamp")
    assert status["state"] == "running"


def test_zero_negative_and_older_stamps_are_refused(start_rig):
    """A frame older than the newest (out of order) is refused and counted while the normal
    camera keeps driving; stamps 0 and negative (stale on arrival) too, and stop the robot."""
    rig = start_rig()

    def older() -> Image:
        msg = rig.frame_msg()
        rig.sent_stamps.pop()
        msg.header.stamp = rig.ros.stamp(-0.2)  # fresh, but behind the newest frame
        return msg

    def zero() -> Image:
        msg = older()
        msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0
        return msg

    def negative() -> Image:  # rclpy's Time.from_msg raises on these: a node that used it died
        msg = older()
        msg.header.stamp.sec = -5
        return msg

    mark = len(rig.arm)
    with rig.camera_running():
        with rig.playing(rig.camera, older, 5.0):
            rig.wait_for_count("frames_rejected_out_of_order", 3, timeout_s=15.0)
        rig.wait_commanding(after_s=rig.ros.now_s())
    rig.assert_no_gap(mark)
    rig.assert_stream_fault(rig.camera, [zero, negative], "stale")


# --- compressed frames ---------------------------------------------------------------------------


@pytest.mark.parametrize("bomb", [jpeg_bomb, png_bomb], ids=["jpeg", "png"])
def test_decompression_bombs_are_refused_from_the_header(start_rig, bomb):
    """A tiny JPEG/PNG declaring 30000x30000 px is refused before decoding (it once blocked the
    loop for 15 s and grew the process to 5.6 GB): counted as oversized, the stop on time, the
    control loop never stalls, memory stays put, and good JPEG frames drive the robot again."""
    rig = start_rig(compressed=True)
    data = bomb()
    assert len(data) < 1000

    def make_bomb() -> CompressedImage:
        msg = CompressedImage(format="png" if data.startswith(b"\x89PNG") else "jpeg", data=data)
        msg.header.stamp = rig.ros.stamp()
        return msg

    rss_before_mb = rss_mb(rig.process.pid)
    rig.assert_stream_fault(rig.compressed, [make_bomb], "oversized")
    assert rss_mb(rig.process.pid) - rss_before_mb < MAX_GROWTH_MB


def test_corrupt_and_truncated_compressed_frames_are_each_counted(start_rig):
    """Truncated JPEG and PNG, a PNG with broken data, another format, an empty message: each
    refused frame counted (not only those a control tick would have used), the stop on time."""
    rig = start_rig(compressed=True)
    jpeg, png, broken = encoded(".jpg"), encoded(".png"), corrupt_png()
    payloads = [jpeg[: len(jpeg) // 2], png[: len(png) - 20], broken, b"GIF89a" + bytes(64), b""]

    def maker(payload: bytes) -> Callable[[], CompressedImage]:
        def make() -> CompressedImage:
            msg = CompressedImage(format="jpeg", data=payload)
            msg.header.stamp = rig.ros.stamp()
            return msg

        return make

    rig.assert_stream_fault(rig.compressed, [maker(p) for p in payloads], "undecodable")
    # The decoders print nothing for these: each was refused before it reached one.
    assert "libpng error" not in rig.process.output


# --- raw frames ----------------------------------------------------------------------------------


def test_bad_raw_frames_are_each_counted(start_rig):
    """Unsupported encoding, step and data length that disagree, an empty frame: counted as
    invalid, each of them; a 7680x4320 header (above max_frame_pixels) as oversized."""
    rig = start_rig()
    bad = [
        raw_image(encoding="yuv422_custom"),
        raw_image(data_len=10),
        raw_image(width=0, height=0, data_len=0),
        raw_image(step=4),
    ]

    def maker(msg: Image) -> Callable[[], Image]:
        def make() -> Image:
            msg.header.stamp = rig.ros.stamp()
            return msg

        return make

    rig.assert_stream_fault(rig.camera, [maker(msg) for msg in bad], "invalid")
    oversized = raw_image(width=7680, height=4320, data_len=16)
    rig.assert_stream_fault(rig.camera, [maker(oversized)], "oversized")


# --- camera loss ---------------------------------------------------------------------------------


def test_camera_loss_stops_the_robot_and_control_resumes_when_it_returns(start_rig):
    rig = start_rig()
    with rig.camera_running():
        rig.wait_commanding()
    last_good_s, mark = rig.sent_stamps[-1], len(rig.arm)
    rig.assert_stops_in_time(last_good_s, mark)
    # Stopped for a stale frame: every frame sent has been stepped on or passed over, so the
    # steps counter is final (before the stop, a tick may still step on the last frames sent).
    before = rig.status_after(0.1)
    time.sleep(FAULT_S - STALE_TIMEOUT_S)
    rig.assert_no_gap(mark)
    lost = rig.status_after(0.1)
    assert int(lost["stale_ticks"]) > int(before["stale_ticks"])
    assert lost["steps"] == before["steps"]
    rig.resume()


# --- instructions --------------------------------------------------------------------------------


def rejected_instruction_warnings(process) -> int:
    return sum(bool(re.search(r"rejected instruction", line)) for line in process.lines)


def test_rejected_instructions_leave_the_episode_running(start_rig):
    """100 kB, empty and whitespace-only instructions are refused and counted; the running
    episode and its instruction carry on."""
    rig = start_rig()
    with rig.camera_running():
        mark = len(rig.arm)
        for index, text in enumerate(["x" * 100_000, "", " \t\n "], start=1):
            rig.say(text)  # latched, depth 1: one at a time
            rig.wait_for_count("instructions_rejected", index)
        rig.wait_commanding(after_s=rig.ros.now_s())
    status = rig.status_after(0.3)
    assert status["instruction"] == "pick coke can"
    assert status["state"] == "running"
    rig.assert_no_gap(mark)
    assert rig.process.returncode is None


def test_an_instruction_flood_is_counted_and_logged_with_a_throttle(start_rig):
    """10,000 instructions in about a second, half refused: the node lives, counts
    what reaches it, logs a rejection at most once per throttle period (once: one warning per
    message, 91 in 2 s), and ends on the last instruction said."""
    rig = start_rig()
    warnings_before = rejected_instruction_warnings(rig.process)
    with rig.camera_running():
        mark = len(rig.arm)
        started = time.monotonic()
        for index in range(10_000):
            rig.say(f"pick can {index}" if index % 2 else " ")
            if index % 20 == 0:
                time.sleep(0.002)  # paced a little, so that thousands reach a depth-1 reader
        rig.say("open the top drawer")
        flood_s = time.monotonic() - started
        # Reliable delivery: the node works through what reached it, then takes the last one.
        rig.diagnostics.wait_for(
            lambda m: any(
                kv.key == "instruction" and kv.value == "open the top drawer"
                for status in m.status
                for kv in status.values
            ),
            timeout_s=60.0,
        )
        drained_s = time.monotonic() - started
        rig.wait_commanding(after_s=rig.ros.now_s())
        status = rig.status_after(0.3)
    # Reported, not asserted: on a loaded 2-core machine the flood (this process publishing as
    # fast as it can, DDS and the node sharing the cores) can hold commands back for seconds;
    # what must hold is that control resumes on the last instruction, checked above.
    times = [item.time_s for item in rig.arm.received(mark)]
    longest_gap_s = max(np.diff(times)) if len(times) >= 2 else float("nan")
    assert int(status["instructions_received"]) > 1
    rejected = int(status["instructions_rejected"])  # unthrottled: as many warnings
    logged = rejected_instruction_warnings(rig.process) - warnings_before
    elapsed_s = time.monotonic() - started
    assert logged <= elapsed_s / 2.0 + 2, f"{logged} warnings in {elapsed_s:.1f} s"
    assert rejected > logged, f"{rejected} rejected, {logged} warnings: no throttle seen"
    print(
        f"flood: 10,000 instructions published in {flood_s:.1f} s, taken by {drained_s:.1f} s, "
        f"{status['instructions_received']} received, {logged} warnings logged, longest gap "
        f"between commands {longest_gap_s:.2f} s, {status.get('missed_ticks')} missed ticks"
    )
    assert rig.process.returncode is None
