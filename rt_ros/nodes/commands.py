"""Plain command types the driver passes between its subscriptions, safety layer and backends.

No rclpy here: the safety layer and its tests use these without ROS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

Vec3 = tuple[float, float, float]
ZERO3: Vec3 = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class TwistCommand:
    """A velocity command: linear m/s and angular rad/s about x, y, z, with its source stamp."""

    linear_mps: Vec3 = ZERO3
    angular_rps: Vec3 = ZERO3
    # Seconds on the node clock: for an incoming command the camera frame's stamp.
    stamp_s: float = 0.0

    def values(self) -> tuple[float, ...]:
        """The six components: linear x, y, z then angular x, y, z."""
        return (*self.linear_mps, *self.angular_rps)

    def is_finite(self) -> bool:
        return all(math.isfinite(v) for v in self.values()) and math.isfinite(self.stamp_s)

    def is_zero(self) -> bool:
        return not any(self.values())


class ArmCommand(TwistCommand):
    """End-effector twist in the arm base frame."""


class BaseCommand(TwistCommand):
    """Mobile base twist in the base frame."""


class Mode(str, Enum):
    """What the policy drives: the arm, the base, or nothing (episode over)."""

    ARM = "arm"
    BASE = "base"
    TERMINATE = "terminate"
