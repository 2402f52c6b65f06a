"""Backend names -> implementations, loaded lazily so an optional backend's imports stay optional
(`sim` needs mujoco, the `sim` extra; a robot with `ros_topics` does not)."""

from __future__ import annotations

import importlib

from rt_ros.nodes.backends.robot_backend import RobotBackend
from rt_ros.runtime.errors import ConfigError

# name -> "module:Class" (imported on first use) or the class itself.
_BACKENDS: dict[str, str | type[RobotBackend]] = {
    "ros_topics": "rt_ros.nodes.backends.ros_topics_backend:RosTopicsBackend",
    "sim": "rt_ros.nodes.backends.sim_backend:SimBackend",
}
# Reserved names and why they cannot be selected (none at present).
_UNAVAILABLE: dict[str, str] = {}


def register_backend(name: str, backend: str | type[RobotBackend]) -> None:
    """Make `name` selectable; `backend` is a class or a lazy "module:Class" path."""
    _BACKENDS[name] = backend
    _UNAVAILABLE.pop(name, None)


def backend_names() -> list[str]:
    """Names that can be selected now."""
    return sorted(_BACKENDS)


def backend_class(name: str) -> type[RobotBackend]:
    """The class registered as `name`; ConfigError for reserved, unknown or unloadable names."""
    if name in _UNAVAILABLE:
        raise ConfigError(f"backend {name!r} cannot be selected: {_UNAVAILABLE[name]}")
    if name not in _BACKENDS:
        raise ConfigError(f"backend must be one of {backend_names()}, got {name!r}")
    target = _BACKENDS[name]
    if isinstance(target, str):
        module_name, _, class_name = target.partition(":")
        try:
            target = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"backend {name!r} cannot be loaded from {target!r}: {err}") from err
        _BACKENDS[name] = target
    return target


def create_backend(name: str) -> RobotBackend:
    """A new, unconnected backend instance."""
    return backend_class(name)()
