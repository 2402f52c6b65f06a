"""Keyframe weights: more loss on the ticks where the demonstrated action changes.

A policy that sees its recent frames can tell how it was moving and learn to keep moving so:
consecutive actions of a demonstration are nearly always alike, so copying the last motion
fits most ticks. It is wrong exactly where the demonstrator changes what it does (stopping over
the object, closing the gripper, turning back), and those few ticks decide the episode. Weighting
them up, as keyframe-focused imitation learning does (Wen et al., "Keyframe-Focused Visual
Imitation Learning", ICML 2021), makes the change worth learning. Weight 1 is RT-1's loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rt_ros.runtime.action_space import ActionSpace
from rt_ros.train.training_store import EpisodeRecord

# What a change is measured on: the arm's translation, the gripper and the mode.
KEYFRAME_ROLES = ("arm.linear.x", "arm.linear.y", "arm.linear.z", "gripper", "mode")


def keyframe_dimensions(space: ActionSpace) -> tuple[list[int], list[int]]:
    """Token indices of the profile's dimensions in KEYFRAME_ROLES: (continuous, discrete)."""
    measured = [(i, dim) for i, dim in enumerate(space.dimensions) if dim.role in KEYFRAME_ROLES]
    continuous = [i for i, dim in measured if dim.kind == "continuous"]
    return continuous, [i for i, dim in measured if dim.kind != "continuous"]


def keyframe_rows(
    tokens: np.ndarray,
    episodes: Sequence[EpisodeRecord],
    dimensions: tuple[Sequence[int], Sequence[int]],
    min_change_bins: int,
) -> np.ndarray:
    """bool [N]: store rows whose tokens differ from the episode's previous tick by at least
    `min_change_bins` on any continuous dimension of `dimensions` (continuous, discrete) or
    at all on a discrete one (an episode's first tick is not a keyframe)."""
    if min_change_bins < 1:
        raise ValueError(f"min_change_bins ({min_change_bins!r}) must be >= 1")
    continuous, discrete = (np.asarray(columns, dtype=np.int64) for columns in dimensions)
    flags = np.zeros(len(tokens), dtype=bool)
    for episode in episodes:
        rows = tokens[episode.start : episode.start + episode.length].astype(np.int64)
        change = np.abs(np.diff(rows, axis=0))
        changed = (change[:, continuous] >= min_change_bins).any(axis=1)
        changed |= (change[:, discrete] > 0).any(axis=1)
        flags[episode.start + 1 : episode.start + episode.length] = changed
    return flags


def keyframe_weights(flags: np.ndarray, weight: float) -> np.ndarray:
    """float32 [N]: `weight` on keyframe rows, 1 elsewhere."""
    if not (np.isfinite(weight) and weight >= 1.0):
        raise ValueError(f"keyframe weight ({weight!r}) must be a finite number >= 1")
    return np.where(flags, np.float32(weight), np.float32(1.0)).astype(np.float32)
