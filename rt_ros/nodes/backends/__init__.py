"""Robot backends behind the driver node's safety layer, selected by name through the registry."""

from rt_ros.nodes.backends.registry import (
    backend_class,
    backend_names,
    create_backend,
    register_backend,
)
from rt_ros.nodes.backends.robot_backend import BackendError, RobotBackend, RobotState

__all__ = [
    "BackendError",
    "RobotBackend",
    "RobotState",
    "backend_class",
    "backend_names",
    "create_backend",
    "register_backend",
]
