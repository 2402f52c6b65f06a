"""Header stamps as seconds, for stamps a hostile or broken publisher may send."""

from __future__ import annotations

from typing import Any


def stamp_seconds(stamp: Any) -> float:
    """`builtin_interfaces/Time` as float seconds, negative ones included.

    Not `rclpy.time.Time.from_msg`: it raises ValueError on negative seconds, and inside a
    subscription callback that exception ends the node.
    """
    return stamp.sec + stamp.nanosec * 1e-9
