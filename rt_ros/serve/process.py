"""`rt-ros serve` as a child process on a free loopback port (benchmarks and tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from rt_ros.runtime.step_protocol import HEALTH_PATH

LOOPBACK = "127.0.0.1"
# Loading a bundle takes seconds; on a busy 2-core machine, many.
DEFAULT_START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ServerProcess:
    """Starts `rt-ros serve --model MODEL --port PORT ARGS...`, waits for /healthz; `stop()`
    sends SIGTERM (then SIGKILL); `kill()` is an abrupt crash."""

    def __init__(
        self,
        model: Path,
        args: Sequence[str] = (),
        port: int | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.argv = [
            sys.executable, "-m", "rt_ros.cli", "serve",
            "--model", str(model), "--host", LOOPBACK, "--port", str(self.port),
            "--log-level", "warning", *args,
        ]  # fmt: skip
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.popen: subprocess.Popen | None = None

    def start(self, timeout_s: float = DEFAULT_START_TIMEOUT_S) -> ServerProcess:
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"rt-ros serve exited with {self.popen.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + HEALTH_PATH, timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"rt-ros serve did not become healthy within {timeout_s:g} s")

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-request, as a crashed machine's would."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log is not subprocess.DEVNULL:
            self._log.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
