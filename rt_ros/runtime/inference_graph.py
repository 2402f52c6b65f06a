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

    @property
    def has_batch_axis(self) -> bool:
        """Whether the leading axis is symbolic (any batch size) and all others are fixed."""
        return (
            len(self.shape) > 0
            and not isinstance(self.shape[0], int)
            and all(isinstance(dim, int) for dim in self.shape[1:])
        )

    def batch_one_shape(self) -> tuple[int, ...] | None:
        """The shape at batch size 1: fixed shapes as they are, a symbolic batch axis as 1;
        None when another axis is symbolic."""
        if self.is_fixed:
            return tuple(self.shape)
        if self.has_batch_axis:
            return (1, *self.shape[1:])
        return None


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

    @property
    def batches(self) -> bool:
        """Whether one run takes several items: every input but scalars has a symbolic batch
        axis (rt_ros exports them so; bundles from before, and OpenVINO's graphs, run one)."""
        tensors = [spec for spec in self.inputs.values() if spec.shape]
        return bool(tensors) and all(spec.has_batch_axis for spec in tensors)

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
