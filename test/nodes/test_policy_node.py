"""The policy node as a real process over DDS on loopback, with config/policy.yaml and a real
exported rt1-tiny bundle: commands at the control rate with the frame's stamp, mode gating,
instruction resets, stale-camera stops, terminate, and bad input that never crashes the node."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from rt_ros.runtime.action_space import load_action_space

rclpy = pytest.importorskip("rclpy", reason="needs rclpy (the ros extra or a ROS 2 install)")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from rt_ros.nodes.image_conversion import rgb_to_image_msg  # noqa: E402
from rt_ros.nodes.qos import INSTRUCTION_QOS, SENSOR_QOS, STATUS_QOS  # noqa: E402

pytestmark = pytest.mark.ros

CONTROL_RATE_HZ = 5.0
CAMERA_RATE_HZ = 20.0
STALE_TIMEOUT_S = 0.5


def seconds(stamp) -> float:
    return Time.from_msg(stamp).nanoseconds * 1e-9


def twist_is_zero(msg: TwistStamped) -> bool:
    t = msg.twist
    return not any((t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z))


def mode_profile(tmp_path: Path, label: str) -> Path:
    """The default RT-1 profile whose mode dimension has one valid value: constrained decoding
    then always yields `label`, which steers an untrained model deterministically."""
    data = load_action_space("rt1_everyday_robots").to_dict()
    data["name"] = f"rt1_always_{label}"
    for dimension in data["dimensions"]:
        if dimension.get("role") == "mode":
            dimension["values"] = [dimension["values"][0]]
            dimension["labels"] = [label]
    path = tmp_path / f"always_{label}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class PolicyHarness:
    """The test's side of the policy node: camera, instruction, command and diagnostics topics."""

    def __init__(self, ros_node) -> None:
        self.ros = ros_node
        self.camera = ros_node.publisher(Image, "camera/image_raw", SENSOR_QOS)
        self.instruction = ros_node.publisher(String, "instruction", INSTRUCTION_QOS)
        self.arm = ros_node.subscribe(TwistStamped, "cmd/arm")
        self.base = ros_node.subscribe(TwistStamped, "cmd/base")
        self.mode = ros_node.subscribe(String, "cmd/mode")
        self.diagnostics = ros_node.subscribe(DiagnosticArray, "/diagnostics", STATUS_QOS)
        self.sent_stamps: list[float] = []
        self._rng = np.random.default_rng(0)
        self._frames = [self._rng.integers(0, 256, (120, 160, 3), np.uint8) for _ in range(4)]

    def wait_connected(self) -> None:
        self.ros.wait_for_subscribers(self.camera)
        self.ros.wait_for_subscribers(self.instruction)
        self.ros.wait_for_publishers(self.arm)

    def frame_msg(self, age_s: float = 0.0) -> Image:
        stamp = self.ros.stamp(-age_s)
        self.sent_stamps.append(seconds(stamp))
        return rgb_to_image_msg(self._frames[len(self.sent_stamps) % 4], stamp, "head_camera")

    def say(self, text: str) -> None:
        self.instruction.publish(String(data=text))

    def latest_status(self, start: int = 0, timeout_s: float = 5.0) -> dict[str, str]:
        """Key/values of the next policy status on /diagnostics from index `start` on."""
        received = self.diagnostics.wait_for(
            lambda m: any("policy" in s.name for s in m.status), timeout_s, start
        )
        status = next(s for s in received.msg.status if "policy" in s.name)
        return {kv.key: kv.value for kv in status.values}

    def wait_for_count(self, key: str, at_least: int, timeout_s: float = 10.0) -> dict[str, str]:
        """The first policy status whose counter `key` reached `at_least`."""
        received = self.diagnostics.wait_for(
            lambda m: any(
                "policy" in s.name
                and any(kv.key == key and int(kv.value) >= at_least for kv in s.values)
                for s in m.status
            ),
            timeout_s,
        )
        status = next(s for s in received.msg.status if "policy" in s.name)
        return {kv.key: kv.value for kv in status.values}

    def status_after(self, seconds_s: float) -> dict[str, str]:
        """The first policy status received once `seconds_s` have passed (one received earlier
        may have been computed before the control tick that the test waited for)."""
        time.sleep(seconds_s)
        return self.latest_status(start=len(self.diagnostics))


@pytest.fixture
def harness(ros_node):
    return PolicyHarness(ros_node)


@pytest.fixture
def start_policy(start_node, tiny_bundle):
    def start(**overrides):
        parameters = {
            "model_path": str(tiny_bundle),
            "control_rate_hz": CONTROL_RATE_HZ,
            "stale_image_timeout_s": STALE_TIMEOUT_S,
            **overrides,
        }
        process = start_node("policy_node", params_file="policy.yaml", overrides=parameters)
        process.wait_for_output(r"ready: bundle", timeout_s=60.0)
        return process

    return start


@pytest.mark.parametrize("executor", ["events", "multi_threaded"])
def test_commands_arrive_at_the_control_rate_with_the_frame_stamp(start_policy, harness, executor):
    process = start_policy(executor=executor)
    harness.wait_connected()
    harness.say("pick coke can")
    with harness.ros.repeat(harness.camera, harness.frame_msg, CAMERA_RATE_HZ):
        harness.arm.wait_for(lambda m: True, timeout_s=10.0)
        mark = len(harness.arm)
        time.sleep(3.0)
        commands = harness.arm.received(mark)
    sent = set(harness.sent_stamps)
    assert commands, process.output
    for item in commands:
        assert item.msg.header.frame_id == "base_link"
        if seconds(item.msg.header.stamp) not in sent:
            # A command without a frame's stamp may only be a stop, stamped with the clock, when a
            # starved 2-core machine left the node without a fresh frame (CI has seen a 1 s gap).
            assert twist_is_zero(item.msg), "a command must carry its frame's stamp"
            process.wait_for_output(r"old \(stale_image_timeout_s .*\): stopping", timeout_s=5.0)
    stamps = [seconds(m.msg.header.stamp) for m in commands if seconds(m.msg.header.stamp) in sent]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    # The control timer ticks at 5 Hz whatever the camera rate (20 Hz here): never faster than
    # the timer, and not far below it (a loaded 2-core CI machine has delayed ticks to 3.3 Hz;
    # the rate is a benchmark's figure, this only tells the timer from the camera)...
    status = harness.latest_status(start=len(harness.diagnostics))
    rate_hz = float(status["achieved_rate_hz"])
    assert rate_hz <= 6.0
    if executor == "events":  # multi_threaded falls far behind on 2 busy cores (README)
        assert rate_hz >= 2.5
    # ...and a command goes out per tick that found a new frame: never more than the ticks in
    # 3 s (about 15), and with the events executor most of them (a loaded machine may deliver a
    # tick's frame late; multi_threaded has sent 4 in 3 s on a busy CI machine).
    assert len(commands) <= 18
    if executor == "events":
        assert len(commands) >= 6
    assert process.returncode is None


def test_arm_mode_zeroes_the_base(start_policy, harness, tmp_path):
    """With the mode steered to `arm`, base commands are zero while arm commands move."""
    start_policy(action_space=str(mode_profile(tmp_path, "arm")))
    harness.wait_connected()
    harness.say("pick coke can")
    with harness.ros.repeat(harness.camera, harness.frame_msg, CAMERA_RATE_HZ):
        harness.mode.wait_for(lambda m: m.data == "arm", timeout_s=10.0)
        arm = harness.arm.wait_for(lambda m: not twist_is_zero(m), timeout_s=5.0).msg
        stamp = arm.header.stamp
        base = harness.base.wait_for(lambda m: m.header.stamp == stamp, timeout_s=5.0).msg
        assert twist_is_zero(base), "mode arm zeroes the base"
    status = harness.latest_status(start=len(harness.diagnostics))
    assert status["state"] == "running"


def test_terminate_stops_and_idles_until_a_new_instruction(start_policy, harness, tmp_path):
    start_policy(action_space=str(mode_profile(tmp_path, "terminate")))
    harness.wait_connected()
    harness.say("pick coke can")
    with harness.ros.repeat(harness.camera, harness.frame_msg, CAMERA_RATE_HZ):
        harness.mode.wait_for(lambda m: m.data == "terminate", timeout_s=10.0)
        mark = len(harness.arm)
        arm = harness.arm.received(mark - 1)[0].msg
        assert twist_is_zero(arm)
        time.sleep(1.0)
        assert len(harness.arm) == mark, "no commands after terminate"
        status = harness.latest_status(start=len(harness.diagnostics))
        assert status["state"] == "terminated"
        assert int(status["episodes_terminated"]) == 1
        modes_mark = len(harness.mode)
        harness.say("open the drawer")
        harness.mode.wait_for(lambda m: m.data == "terminate", timeout_s=10.0, start=modes_mark)
    assert int(harness.latest_status(start=len(harness.diagnostics))["episodes_terminated"]) == 2


def test_new_instruction_resets_the_history(start_policy, harness):
    process = start_policy()
    harness.wait_connected()
    harness.say("pick coke can")
    with harness.ros.repeat(harness.camera, harness.frame_msg, CAMERA_RATE_HZ):
        harness.arm.wait_for(lambda m: True, timeout_s=10.0)
        harness.say("open the top drawer")
        process.wait_for_output(r"new instruction: 'open the top drawer' \(history reset\)")
        status = harness.status_after(1.5)
    assert status["instruction"] == "open the top drawer"
    assert status["state"] == "running"


def test_stale_camera_stops_within_one_period_and_skips_the_model(start_policy, harness):
    start_policy()
    harness.wait_connected()
    harness.say("pick coke can")
    with harness.ros.repeat(harness.camera, harness.frame_msg, CAMERA_RATE_HZ):
        harness.arm.wait_for(lambda m: True, timeout_s=10.0)
    last_frame_s = harness.sent_stamps[-1]
    stale_at_s = last_frame_s + STALE_TIMEOUT_S
    mark = len(harness.arm)
    stop = harness.arm.wait_for(
        lambda m: twist_is_zero(m) and seconds(m.header.stamp) > stale_at_s, 5.0, mark
    )
    arrival_s = harness.ros.now_s() - (time.monotonic() - stop.time_s)
    assert arrival_s - stale_at_s <= 1.0 / CONTROL_RATE_HZ + 0.1
    steps_before = int(harness.status_after(0.1)["steps"])
    status = harness.status_after(1.5)
    assert int(status["steps"]) == steps_before, "the model must not run on a stale frame"
    assert int(status["stale_ticks"]) >= 5

    # A frame that arrives already stale is not run either, and stops the robot.
    harness.camera.publish(harness.frame_msg(age_s=2.0))
    status = harness.status_after(1.0)
    assert int(status["steps"]) == steps_before


def bad_image(encoding="rgb8", width=8, height=4, step=None, data_len=None) -> Image:
    msg = Image()
    msg.encoding, msg.width, msg.height = encoding, width, height
    msg.step = step if step is not None else width * 3
    msg.data = bytes(data_len if data_len is not None else msg.step * height)
    return msg


def test_bad_input_is_counted_and_never_crashes(start_policy, harness):
    process = start_policy()
    harness.wait_connected()
    bad_images = [
        bad_image(encoding="yuv422_custom"),
        bad_image(data_len=10),  # disagrees with step x height
        bad_image(width=0, height=0, data_len=0),
        bad_image(width=9000, height=1),  # oversized
        bad_image(step=4),  # rows shorter than width x channels
    ]
    sent = iter(range(10**6))

    def next_bad_image() -> Image:
        msg = bad_images[next(sent) % len(bad_images)]
        msg.header.stamp = harness.ros.stamp()
        return msg

    # Sensor QoS is best effort: repeat until the node has counted every kind of bad frame.
    with harness.ros.repeat(harness.camera, next_bad_image, CAMERA_RATE_HZ):
        harness.diagnostics.wait_for(
            lambda m: any(
                kv.key == "frames_rejected" and int(kv.value) >= 2 * len(bad_images)
                for status in m.status
                for kv in status.values
            ),
            timeout_s=15.0,
        )
    # The instruction topic keeps only the newest message (latched), so say one at a time; the
    # warnings are throttled, the counter counts each.
    harness.say("")
    harness.wait_for_count("instructions_rejected", 1)
    harness.say("x" * 100_000)
    harness.wait_for_count("instructions_rejected", 2)
    process.wait_for_output(r"rejected instruction: empty")
    harness.say("pick coke can")
    with harness.ros.repeat(harness.camera, harness.frame_msg, CAMERA_RATE_HZ):
        harness.arm.wait_for(lambda m: True, timeout_s=10.0)  # still works afterwards
        status = harness.status_after(1.2)
    assert int(status["frames_rejected"]) >= len(bad_images)
    assert int(status["frames_rejected_invalid"]) >= 4
    assert int(status["frames_rejected_oversized"]) >= 1
    assert int(status["instructions_rejected"]) == 2
    assert status["instruction"] == "pick coke can"
    assert process.returncode is None


def test_missing_bundle_exits_with_a_clear_error(start_node, tmp_path):
    process = start_node(
        "policy_node", params_file="policy.yaml", overrides={"model_path": str(tmp_path)}
    )
    assert process.wait(30.0) == 2
    assert "manifest is missing" in process.output


def test_unknown_executor_exits_with_a_clear_error(start_node, tiny_bundle):
    process = start_node(
        "policy_node",
        params_file="policy.yaml",
        overrides={"model_path": str(tiny_bundle), "executor": "static_single"},
    )
    assert process.wait(30.0) == 2
    assert "executor must be one of events, multi_threaded, got 'static_single'" in (
        process.output
    )


def test_compressed_frames_and_the_debug_image(start_policy, harness):
    """JPEG frames on the optional CompressedImage topic drive the policy; the debug image
    carries the frame's stamp."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    start_policy(
        image_topic="camera/unused",
        compressed_image_topic="camera/image_raw/compressed",
        publish_debug_image=True,
    )
    ros = harness.ros
    compressed = ros.publisher(CompressedImage, "camera/image_raw/compressed", SENSOR_QOS)
    debug = ros.subscribe(Image, "policy/debug_image", SENSOR_QOS)
    ros.wait_for_subscribers(compressed)
    ros.wait_for_subscribers(harness.instruction)
    ok, jpeg = cv2.imencode(
        ".jpg", np.random.default_rng(1).integers(0, 256, (120, 160, 3), np.uint8)
    )
    assert ok

    def frame() -> CompressedImage:
        msg = CompressedImage(format="jpeg", data=jpeg.tobytes())
        msg.header.stamp = ros.stamp()
        return msg

    harness.say("pick coke can")
    with ros.repeat(compressed, frame, CAMERA_RATE_HZ):
        command = harness.arm.wait_for(lambda m: True, timeout_s=10.0).msg
        picture = debug.wait_for(lambda m: m.header.stamp == command.header.stamp, 5.0).msg
    assert (picture.width, picture.height, picture.encoding) == (160, 120, "rgb8")
