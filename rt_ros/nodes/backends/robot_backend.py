"""The interface every robot backend implements; the driver's safety layer always sits in front."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rt_ros.nodes.commands import ArmCommand, BaseCommand, Vec3
from rt_ros.runtime.errors import RtRosError

if TYPE_CHECKING:
    from rclpy.node import Node


class BackendError(RtRosError):
    """A backend cannot send a command or read the robot; the driver stops and reports it."""


@dataclass(frozen=True)
class RobotState:
    """The newest robot state a backend knows; empty until the robot has reported."""

    joint_names: tuple[str, ...] = ()
    # SI units per joint type: rad and rad/s for revolute joints, m and m/s for prismatic ones.
    joint_positions: tuple[float, ...] = ()
    joint_velocities: tuple[float, ...] = ()
    # End-effector position in the arm base frame (the workspace box frame), if known.
    ee_position_m: Vec3 | None = None
    # Node-clock seconds of the newest state message; None before the first one.
    stamp_s: float | None = None


class RobotBackend(ABC):
    """Sends safe commands to a robot and reads its state. Only the driver node calls it.

    Lifecycle: `declare_parameters` (class level, before configure), then `connect` in the driver's
    on_configure, `apply`/`stop`/`read_state` from its update timer, `disconnect` on cleanup.
    """

    name: ClassVar[str]
    # The frames the backend's twists are expressed in; set by `connect`.
    arm_frame_id: str = ""
    base_frame_id: str = ""

    @classmethod
    @abstractmethod
    def declare_parameters(cls, node: Node) -> None:
        """Declare its ROS parameters, named `<backend name>.<field>`, unless already declared."""

    @abstractmethod
    def connect(self, node: Node) -> None:
        """Read parameters, create publishers/subscriptions; ConfigError names a bad parameter."""

    @abstractmethod
    def read_state(self) -> RobotState:
        """The newest state; never blocks."""

    @abstractmethod
    def apply(
        self, arm: ArmCommand | None, base: BaseCommand | None, gripper: float | None
    ) -> None:
        """Send commands that passed the safety layer; None leaves that part of the robot alone."""

    @abstractmethod
    def stop(self) -> None:
        """Stop arm and base motion now (zero twists); the gripper holds its last command."""

    def diagnostic_values(self) -> dict[str, str]:
        """Backend-specific key/values the driver adds to its /diagnostics status."""
        return {}

    @abstractmethod
    def disconnect(self) -> None:
        """Release everything `connect` created; the robot is left stopped."""
