"""The one interface every inference backend gives a bundle's graph: named inputs in, arrays out.

`Policy`, the token cache and the benchmarks see only this; which backend runs a graph (ONNX
Runtime, OpenVINO) is the business of rt_ros.runtime.backends.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """Name, fixed shape and dtype of one graph input or output."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: type

    @property
    def is_fixed(self) -> bool:
        return all(isinstance(dim, int) for dim in self.shape)


class InferenceGraph(abc.ABC):
    """One graph of a bundle, loaded by one backend and ready to run."""

    path: Path
    # What runs the graph, as it is reported in logs, /diagnostics and benchmarks.
    provider: str
    # The numeric precision the backend actually computes in: "f32" or "bf16".
    precision: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """What runs the graph, for the one log line: backend, release, device, precision."""

    @abc.abstractmethod
    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None) -> list:
        """Run the graph; returns host copies of the requested outputs (all by default)."""

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Names, dtypes and fixed shapes of the feeds, checked before the backend sees them."""
        missing = sorted(set(self.inputs) - set(feeds))
        unknown = sorted(set(feeds) - set(self.inputs))
        if missing or unknown:
            raise ValueError(
                f"{self.path.name}: missing inputs {missing}, unknown inputs {unknown}"
            )
        for name, array in feeds.items():
            spec = self.inputs[name]
            if array.dtype != spec.dtype:
                raise ValueError(
                    f"{self.path.name}: input {name!r} must be {np.dtype(spec.dtype)}, "
                    f"got {array.dtype}"
                )
            if spec.is_fixed and tuple(array.shape) != spec.shape:
                raise ValueError(
                    f"{self.path.name}: input {name!r} must have shape {spec.shape}, "
                    f"got {tuple(array.shape)}"
                )
