"""Both nodes stop cleanly however many SIGINT/SIGTERM arrive: Ctrl-C under `ros2 launch` signals
the whole process group, then launch signals each node again, while it may already be exiting.
Each node runs as a real process leading its own process group, busy (the policy node infers on
streamed frames); exit code 0 and no traceback is the contract. test/launch/test_launch_signals.py
checks the same under launch itself."""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from collections.abc import Sequence

import pytest

pytest.importorskip("rclpy", reason="needs rclpy (the ros extra or a ROS 2 install)")

from conftest import EXIT_TIMEOUT_S, NodeProcess
from test_policy_node import PolicyHarness

pytestmark = pytest.mark.ros

# After the first signal, another every SIGNAL_PERIOD_S until the process exits: some land while
# it cleans up, which is where rclpy's default handlers raised KeyboardInterrupt.
SIGNAL_PERIOD_S = 0.05
BURSTS = {
    "ctrl-c-twice": (signal.SIGINT, [signal.SIGINT]),
    "sigterm-then-both": (signal.SIGTERM, [signal.SIGINT, signal.SIGTERM]),
}


def signal_group_until_exit(process: NodeProcess, first: int, then: Sequence[int]) -> int:
    """`first` to the process group, then `then` in turn until the process exits; its code."""
    process.signal_group(first)
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    for sig in itertools.cycle(then):
        try:
            return process.wait(SIGNAL_PERIOD_S)
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError(
                    f"{process.name} did not exit within {EXIT_TIMEOUT_S} s of the first signal;"
                    f" output:\n{process.output}"
                ) from None
            process.signal_group(sig)
    raise AssertionError("unreachable")


def assert_clean_exit(process: NodeProcess, code: int) -> None:
    assert code == 0, process.output
    assert "Traceback" not in process.output
    assert "KeyboardInterrupt" not in process.output


@pytest.mark.parametrize("burst", sorted(BURSTS))
def test_policy_node_exits_cleanly_while_inferring(start_node, ros_node, tiny_bundle, burst):
    policy = start_node(
        "policy_node",
        params_file="policy.yaml",
        overrides={"model_path": str(tiny_bundle), "control_rate_hz": 10.0},
    )
    policy.wait_for_output(r"ready: bundle", timeout_s=60.0)
    harness = PolicyHarness(ros_node)
    harness.wait_connected()
    harness.say("pick coke can")
    with ros_node.repeat(harness.camera, harness.frame_msg, 20.0):
        harness.mode.wait_for(lambda _msg: True, timeout_s=30.0)
        code = signal_group_until_exit(policy, *BURSTS[burst])
    assert_clean_exit(policy, code)


@pytest.mark.parametrize("burst", sorted(BURSTS))
def test_driver_node_exits_cleanly_when_active(start_node, burst):
    driver = start_node("driver_node", params_file="driver.yaml")
    driver.wait_for_output(r"\] \[driver_node\]: active", timeout_s=30.0)
    code = signal_group_until_exit(driver, *BURSTS[burst])
    assert_clean_exit(driver, code)
