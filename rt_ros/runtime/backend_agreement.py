"""How often another backend picks the same action tokens as the reference, per action dimension.

Every backend's Policy runs the same episodes of real camera frames; each step whose window holds
a full history (6 frames for RT-1) compares the argmax token of every action dimension with the
reference backend's (ONNX Runtime fp32 in `rt-ros bench`). A precision that changes what the robot
does shows here, whatever its logit error looks like.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rt_ros.runtime.policy import Policy


@dataclass(frozen=True)
class AgreementEpisode:
    """An instruction and its camera frames in order (HxWx3 uint8 RGB, any size)."""

    instruction: str
    frames: Sequence[np.ndarray]


@dataclass
class AgreementResult:
    """Per backend, the fraction of compared steps whose token matched the reference's, per
    action dimension (in the action space's order)."""

    reference: str
    dimensions: tuple[str, ...]
    windows: int = 0
    episodes: int = 0
    matches: dict[str, np.ndarray] = field(default_factory=dict)  # label -> int [dimensions]
    # Tokens at most one bin from the reference's (a bin is 1/256 of a dimension's range).
    near_matches: dict[str, np.ndarray] = field(default_factory=dict)

    def agreement(self, label: str) -> np.ndarray:
        """Fraction in [0, 1] per dimension; NaN before any window is compared."""
        if not self.windows:
            return np.full(len(self.dimensions), np.nan)
        return self.matches[label] / self.windows

    def agreement_within_one_bin(self, label: str) -> np.ndarray:
        """Fraction in [0, 1] per dimension of tokens at most one bin from the reference's."""
        if not self.windows:
            return np.full(len(self.dimensions), np.nan)
        return self.near_matches[label] / self.windows

    def to_dict(self) -> dict:
        return {
            "reference": self.reference,
            "windows": self.windows,
            "episodes": self.episodes,
            "agreement": {
                label: dict(
                    zip(self.dimensions, np.round(self.agreement(label), 4).tolist(), strict=True)
                )
                for label in self.matches
            },
            "agreement_within_one_bin": {
                label: dict(
                    zip(
                        self.dimensions,
                        np.round(self.agreement_within_one_bin(label), 4).tolist(),
                        strict=True,
                    )
                )
                for label in self.near_matches
            },
        }


def measure_agreement(
    policies: Mapping[str, Policy],
    episodes: Iterable[AgreementEpisode],
    windows: int,
    on_window: Callable[[], None] | None = None,
) -> AgreementResult:
    """Run every policy over the episodes until `windows` full-history steps are compared.

    `policies`: label -> Policy over the same bundle; the first is the reference. Frames are fed
    one per step with stamps one second apart; the first history_length - 1 steps of an episode
    fill the window and are not compared.
    """
    if not policies:
        raise ValueError("measure_agreement needs at least one policy")
    labels = list(policies)
    reference_policy = policies[labels[0]]
    history = reference_policy.bundle.manifest.history_length
    dimensions = tuple(d.name for d in reference_policy.action_space.dimensions)
    result = AgreementResult(labels[0], dimensions)
    result.matches = {label: np.zeros(len(dimensions), np.int64) for label in labels}
    result.near_matches = {label: np.zeros(len(dimensions), np.int64) for label in labels}
    for episode in episodes:
        if result.windows >= windows:
            break
        if len(episode.frames) < history:
            continue
        result.episodes += 1
        for policy in policies.values():
            policy.reset(episode.instruction)
        for tick, frame in enumerate(episode.frames):
            tokens = {}
            for label, policy in policies.items():
                policy.step(frame, stamp_s=float(tick))
                tokens[label] = policy.last_logits.argmax(axis=-1)
            if tick < history - 1:
                continue
            for label in labels:
                result.matches[label] += tokens[label] == tokens[labels[0]]
                result.near_matches[label] += np.abs(tokens[label] - tokens[labels[0]]) <= 1
            result.windows += 1
            if on_window is not None:
                on_window()
            if result.windows >= windows:
                break
    return result
