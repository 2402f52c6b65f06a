"""Fixtures for node tests: nodes as real processes over real DDS on loopback, and an in-process
rclpy helper that publishes, listens and waits with deadlines.

Every ROS participant these fixtures make stays on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=
LOCALHOST) and on this test process's own ROS_DOMAIN_ID (`ros_domain_id`, 1-60 by pid), so
concurrent test runs do not hear each other. A test module may override `ros_domain_id`.

Domain IDs stay within 0-101, the range ROS documents as safe on Linux: above it, DDS ports fall
into the kernel's ephemeral port range (32768-60999) and can clash with any outgoing connection.
The tests share it out: 1-60 here, 61-70 test_ros_topics_joint_control.py and
test_remote_node.py (one after the other in a run), 71-101 test/launch;
0, the default, is left to whatever runs without a domain of its own.
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before any rclpy.init in this process: DDS must never leave loopback.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

try:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
except ImportError:  # the unit tests in this folder run without ROS
    rclpy = None

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config"
DOMAIN_IDS = range(1, 61)
# How long a process gets to exit after SIGINT/SIGTERM before it is killed.
EXIT_TIMEOUT_S = 10.0


def require_rclpy() -> None:
    if rclpy is None:
        pytest.skip("rclpy is not importable (install the ros extra or source a ROS 2 install)")


# --- processes ---------------------------------------------------------------------------------


class NodeProcess:
    """A command running as a real process; stdout and stderr are collected line by line.

    It leads its own process group, as a command started from a terminal does, so a test can
    signal the group as Ctrl-C does (`signal_group`) without reaching pytest.
    """

    def __init__(self, argv: Sequence[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.argv = list(argv)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            self.argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"{name}-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def wait_for_output(self, pattern: str, timeout_s: float = 10.0) -> re.Match[str]:
        """The first output line matching the regex `pattern`; fails if the process exits first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for line in self.lines:
                    if match := regex.search(line):
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (
                    self.popen.poll() is not None and not self._reader.is_alive()
                ):
                    break
                self._changed.wait(min(remaining, 0.1))
        raise AssertionError(
            f"{self.name} printed no line matching {pattern!r} within {timeout_s} s "
            f"(exit code {self.popen.poll()}); output:\n{self.output}"
        )

    def wait(self, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        """Wait for the process to exit by itself; its exit code."""
        code = self.popen.wait(timeout_s)
        self._reader.join(timeout_s)
        return code

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def signal_group(self, sig: int) -> None:
        """`sig` to every process in the group, as a terminal sends Ctrl-C (SIGINT)."""
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):  # the group may have just exited
                os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as after a crash."""
        self.send_signal(signal.SIGKILL)
        self.popen.wait(EXIT_TIMEOUT_S)

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        """Ask the process to exit with `sig`; kill it if it has not within timeout_s."""
        self.send_signal(sig)
        try:
            return self.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not exit within {timeout_s} s of signal {sig}; output:\n"
                f"{self.output}"
            ) from None


def ros_environment(domain_id: int) -> dict[str, str]:
    """The environment for the tests' ROS processes: loopback only, own domain, unbuffered."""
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain_id),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        PYTHONUNBUFFERED="1",
        RCUTILS_LOGGING_BUFFERED_STREAM="0",
        RCUTILS_COLORIZED_OUTPUT="0",
    )
    return env


def console_script(name: str) -> str:
    """The installed console script `name`, preferring the one next to this Python."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"console script {name!r} not found: install the package (pip install -e .)")
    return found


def parameter_argument(name: str, value: Any) -> str:
    """`name:=value` for `--ros-args -p`, in YAML so types survive (1.0 stays a double)."""
    return f"{name}:={_yaml_value(value)}"


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value or '""'
    return str(value)


def claim_domain_id(domain_ids: range) -> Iterator[int]:
    """For a session fixture: this test process's ROS_DOMAIN_ID among `domain_ids` (by pid),
    set in os.environ until the fixture ends, then the previous value back."""
    domain_id = domain_ids[os.getpid() % len(domain_ids)]
    previous = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    yield domain_id
    if previous is None:
        os.environ.pop("ROS_DOMAIN_ID", None)
    else:
        os.environ["ROS_DOMAIN_ID"] = previous


@pytest.fixture(scope="session")
def ros_domain_id() -> Iterator[int]:
    """This test process's ROS_DOMAIN_ID, also set in os.environ while the session runs."""
    yield from claim_domain_id(DOMAIN_IDS)


@pytest.fixture
def start_process(
    ros_domain_id: int, request: pytest.FixtureRequest
) -> Iterator[Callable[..., NodeProcess]]:
    """Factory: `start_process(argv, name=None)` runs any command with the test ROS environment.

    Every process still running at the end of the test gets SIGINT, then SIGKILL; their output is
    printed when the test failed.
    """
    started: list[NodeProcess] = []

    def start(argv: Sequence[str], name: str | None = None) -> NodeProcess:
        process = NodeProcess(argv, ros_environment(ros_domain_id), name or Path(argv[0]).name)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.returncode is None:
            try:
                process.stop(signal.SIGINT)
            except AssertionError as err:
                print(err, file=sys.stderr)
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for process in started:
            print(f"--- {process.name} (exit {process.returncode}) ---\n{process.output}")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def start_node(start_process: Callable[..., NodeProcess]) -> Callable[..., NodeProcess]:
    """Factory: start a node's console script as a real process.

    `start_node("driver_node", params_file="driver.yaml", overrides={"update_rate_hz": 100.0},
    ros_args=())` runs `driver_node --ros-args --params-file config/driver.yaml -p ...`.
    `params_file` is relative to config/ (or absolute; None for none).
    """

    def start(
        executable: str,
        params_file: str | Path | None = None,
        overrides: dict[str, Any] | None = None,
        ros_args: Sequence[str] = (),
    ) -> NodeProcess:
        argv = [console_script(executable), "--ros-args"]
        if params_file is not None:
            argv += ["--params-file", str(CONFIG_DIR / params_file)]
        for name, value in (overrides or {}).items():
            argv += ["-p", parameter_argument(name, value)]
        argv += list(ros_args)
        return start_process(argv, name=executable)

    return start


# --- in-process rclpy helper -------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A message and its arrival time in this process (time.monotonic(), seconds)."""

    time_s: float
    msg: Any


class Inbox:
    """Every message received on one topic, in order, with arrival times."""

    def __init__(self, owner: RosTestNode, topic: str) -> None:
        self.topic = topic
        self.subscription: Any = None
        self._owner = owner
        self._items: list[Received] = []

    def _on_message(self, msg: Any) -> None:
        with self._owner.changed:
            self._items.append(Received(time.monotonic(), msg))
            self._owner.changed.notify_all()

    def __len__(self) -> int:
        with self._owner.changed:
            return len(self._items)

    def received(self, start: int = 0) -> list[Received]:
        """Messages from index `start` on (use `len(inbox)` as a mark before acting)."""
        with self._owner.changed:
            return self._items[start:]

    def wait_for(
        self, predicate: Callable[[Any], bool], timeout_s: float = 5.0, start: int = 0
    ) -> Received:
        """The first message from index `start` on for which predicate(msg) holds."""
        found: list[Received] = []

        def match() -> bool:
            found[:] = [r for r in self._items[start:] if predicate(r.msg)][:1]
            return bool(found)

        self._owner.wait_until(match, timeout_s, f"a matching message on {self.topic}")
        return found[0]


class RosTestNode:
    """An rclpy node in its own context, spun by a background thread.

    Callbacks record arrival times as they happen, so the test thread can block in deadline
    waits (`wait_until`, `Inbox.wait_for`) instead of sleeping.
    """

    def __init__(self, domain_id: int, name: str = "rt_ros_test") -> None:
        self.context = Context()
        rclpy.init(
            context=self.context,
            domain_id=domain_id,
            signal_handler_options=SignalHandlerOptions.NO,
        )
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.changed = threading.Condition()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._spin, name=f"{name}-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._closing.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(5.0)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def now_s(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def stamp(self, offset_s: float = 0.0) -> Any:
        """A builtin_interfaces/Time `offset_s` from now on this node's clock."""
        now_ns = self.node.get_clock().now().nanoseconds + round(offset_s * 1e9)
        return rclpy.time.Time(nanoseconds=now_ns).to_msg()

    def publisher(self, msg_type: type, topic: str, qos: Any = None) -> Any:
        from rt_ros.nodes.qos import COMMAND_QOS

        return self.node.create_publisher(msg_type, topic, qos or COMMAND_QOS)

    def subscribe(self, msg_type: type, topic: str, qos: Any = None) -> Inbox:
        from rt_ros.nodes.qos import COMMAND_QOS

        inbox = Inbox(self, topic)
        inbox.subscription = self.node.create_subscription(
            msg_type, topic, inbox._on_message, qos or COMMAND_QOS
        )
        return inbox

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Block until predicate() holds (checked whenever a message arrives, and every 50 ms)."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
                self.changed.wait(min(remaining, 0.05))

    def wait_for_subscribers(
        self, publisher: Any, count: int = 1, timeout_s: float = 10.0
    ) -> None:
        """Until `count` subscriptions matched `publisher` (so nothing published is lost)."""
        self.wait_until(
            lambda: publisher.get_subscription_count() >= count,
            timeout_s,
            f"{count} subscriber(s) on {publisher.topic_name}",
        )

    def wait_for_publishers(self, inbox: Inbox, count: int = 1, timeout_s: float = 10.0) -> None:
        self.wait_until(
            lambda: inbox.subscription.get_publisher_count() >= count,
            timeout_s,
            f"{count} publisher(s) on {inbox.topic}",
        )

    @contextmanager
    def repeat(
        self, publisher: Any, make_msg: Callable[[], Any], rate_hz: float
    ) -> Iterator[None]:
        """Publish `make_msg()` at rate_hz (from the spin thread) while the block runs."""
        timer = self.node.create_timer(1.0 / rate_hz, lambda: publisher.publish(make_msg()))
        try:
            yield
        finally:
            self.node.destroy_timer(timer)


@pytest.fixture
def ros_node(ros_domain_id: int) -> Iterator[RosTestNode]:
    """An in-process rclpy node on the test domain, spinning in the background."""
    require_rclpy()
    helper = RosTestNode(ros_domain_id)
    yield helper
    helper.close()
