"""The policy server's settings, validated once; errors name the setting and the value."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from rt_ros.runtime.errors import ConfigError
from rt_ros.runtime.image_messages import DEFAULT_MAX_FRAME_PIXELS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700
LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(frozen=True)
class ServeConfig:
    """How `rt-ros serve` listens, batches and limits requests."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str = ""  # bearer token every request but /healthz must carry; empty: none
    insecure: bool = False  # listen beyond loopback without a token, knowingly
    max_batch_size: int = 8  # steps coalesced into one batch; 1: one at a time
    # How long a batch's first step waits for others. 0: a batch is whatever queued while the
    # last one ran. With rt_ros's batch-1 graphs a wait buys no throughput, only latency
    # (rt-ros bench-serve, README); a backend with batched graphs would want a few ms.
    max_wait_ms: float = 0.0
    max_request_bytes: int = 4 << 20  # larger bodies get 413
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
    max_instruction_chars: int = 1000
    # Fault injection for tests and benchmarks: every step answers this much later.
    inject_delay_ms: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0..65535, got {self.port}")
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if not (math.isfinite(self.max_wait_ms) and 0 <= self.max_wait_ms <= 1000):
            raise ConfigError(f"max_wait_ms must be within 0..1000, got {self.max_wait_ms}")
        if not (math.isfinite(self.inject_delay_ms) and self.inject_delay_ms >= 0):
            raise ConfigError(f"inject_delay_ms must be >= 0, got {self.inject_delay_ms}")
        for name in ("max_request_bytes", "max_frame_pixels", "max_instruction_chars"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not is_loopback(self.host) and not self.token and not self.insecure:
            raise ConfigError(
                f"host {self.host!r} is reachable from other machines: give a bearer token "
                "(--token or RT_ROS_SERVE_TOKEN) or pass --insecure to serve without one"
            )

    @property
    def max_wait_s(self) -> float:
        return self.max_wait_ms / 1e3
