"""Ctrl-C, pressed twice, under `ros2 launch`: both nodes exit 0, launch says "process has finished
cleanly" once for each, and nothing prints a traceback.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group: launch and every node it
started. Launch then sends each node its own SIGINT (and SIGTERM, then SIGKILL, to one that is
slow), so a node gets three or more while it may already be cleaning up. The launch runs here as
`ros2 launch` runs it (ros2launch's LaunchService, through run_launch_file.py where the ros2
command line is not installed), leading its own process group.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REASON = (
    "launch tests need launch and launch_ros: a ROS 2 install (colcon test) or the launch "
    "wheels that scripts/setup.sh installs from ../shared/wheels/ros2-launch"
)
pytest.importorskip("launch", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch_test_support import (  # noqa: E402
    SKIP_REASON,
    STARTUP_TIMEOUT_S,
    domain_id,
    model_bundle,
    share_dir,
)

pytestmark = [
    pytest.mark.ros,
    pytest.mark.skipif(SKIP_REASON is not None, reason=str(SKIP_REASON)),
]

RUN_LAUNCH_FILE = Path(__file__).resolve().with_name("run_launch_file.py")
# Two key presses; launch ignores the second ("user interrupted with ctrl-c (SIGINT) again"),
# the nodes get it all the same.
CTRL_C_GAP_S = 0.2
# Launch itself escalates to SIGTERM after 5 s and SIGKILL after 5 s more.
EXIT_TIMEOUT_S = 60.0


class Launch:
    """`ros2 launch rt_ros FILE ARGS` as a process group; its output collected line by line."""

    def __init__(self, launch_file: str, arguments: dict[str, str]) -> None:
        pairs = [f"{name}:={value}" for name, value in arguments.items()]
        if ros2 := shutil.which("ros2"):
            argv = [ros2, "launch", "rt_ros", launch_file, *pairs]
        else:
            launch_path = share_dir() / "launch" / launch_file
            argv = [sys.executable, str(RUN_LAUNCH_FILE), str(launch_path), *pairs]
        env = dict(
            os.environ,
            ROS_DOMAIN_ID=str(domain_id("signals")),
            ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
            PYTHONUNBUFFERED="1",
            RCUTILS_COLORIZED_OUTPUT="0",
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float) -> None:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not any(regex.search(line) for line in self.lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.popen.poll() is not None:
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout_s} s (exit code "
                        f"{self.popen.poll()}); output:\n" + "\n".join(self.lines)
                    )
                self._changed.wait(min(remaining, 0.1))

    def ctrl_c(self) -> None:
        """SIGINT to the whole process group, as a terminal sends it."""
        os.killpg(self.popen.pid, signal.SIGINT)

    def wait(self, timeout_s: float) -> int:
        code = self.popen.wait(timeout_s)
        self._reader.join(timeout_s)
        return code

    def kill(self) -> None:
        """SIGKILL to whatever of the group is left (a failed test must not leave nodes)."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.popen.wait()


@pytest.mark.parametrize("launch_file", ["robot.launch.py", "sim.launch.py"])
def test_ctrl_c_twice_under_launch_leaves_both_nodes_exiting_cleanly(launch_file: str):
    if launch_file == "sim.launch.py":
        pytest.importorskip("mujoco", reason="the sim backend needs the sim extra (mujoco)")
    launch = Launch(launch_file, {"model_path": str(model_bundle()), "providers": "cpu"})
    try:
        launch.wait_for(r"\[policy_node\]: ready: bundle", STARTUP_TIMEOUT_S)
        launch.wait_for(r"\[driver_node\]: active", STARTUP_TIMEOUT_S)
        launch.ctrl_c()
        time.sleep(CTRL_C_GAP_S)
        launch.ctrl_c()
        code = launch.wait(EXIT_TIMEOUT_S)
    finally:
        launch.kill()
    output = launch.output
    assert code == 0, output
    for node in ("policy_node", "driver_node"):
        finished = re.findall(rf"\[{node}-\d+\]: process has finished cleanly", output)
        assert len(finished) == 1, output
    assert "process has died" not in output
    assert "Traceback" not in output
