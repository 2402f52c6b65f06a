"""Token accuracy on held-out episodes, ticked as the robot ticks: PyTorch and the ONNX bundle.

At tick t the window holds the episode's frames up to t (at most `history`, frame t at slot
min(t, history - 1)) and the action is read at that slot, exactly as the policy node runs; the
discrete dimensions are decoded constrained to their valid values. The bundle runs through the
runtime's own Policy (its instruction encoder, frame encoder, token cache and policy graph), so
equal accuracies mean the exported graphs decide as the checkpoint does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rt_ros.model.rt1 import RT1
from rt_ros.runtime.action_codec import ActionTokenCodec
from rt_ros.runtime.action_space import ActionSpace
from rt_ros.train.training_store import EpisodeRecord, TrainingStore


@dataclass(frozen=True)
class HeldOutAccuracy:
    """Correct tokens per dimension over every tick of the held-out episodes."""

    ticks: int
    per_dimension: dict[str, float]

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_dimension.values()))) if self.per_dimension else 0.0

    def to_dict(self) -> dict:
        return {
            "ticks": self.ticks,
            "token_accuracy": self.mean,
            "per_dimension": self.per_dimension,
        }


def _accuracy(
    space: ActionSpace, episodes: Sequence[EpisodeRecord], store: TrainingStore, predict
) -> HeldOutAccuracy:
    correct = np.zeros(len(space), dtype=np.int64)
    ticks = 0
    for episode in episodes:
        predicted = predict(episode)  # [T, A]
        labels = store.tokens[episode.start : episode.start + episode.length]
        correct += (predicted == labels).sum(axis=0)
        ticks += episode.length
    rates = (correct / max(ticks, 1)).tolist()
    per_dim = dict(zip(space.names, rates, strict=True))
    return HeldOutAccuracy(ticks, per_dim)


def torch_accuracy(
    model: RT1, store: TrainingStore, episodes: Sequence[EpisodeRecord], space: ActionSpace
) -> HeldOutAccuracy:
    """The checkpoint's accuracy, ticked as the robot ticks (eval mode, fp32, CPU)."""
    codec = ActionTokenCodec(space)
    model = model.eval().cpu()
    history = model.preset.history_length

    def predict(episode: EpisodeRecord) -> np.ndarray:
        rows = slice(episode.start, episode.start + episode.length)
        frames = torch.from_numpy(np.array(store.frames[rows]))  # a writable copy
        embedding = torch.from_numpy(store.embeddings[episode.instruction])
        with torch.no_grad():
            tokens = model.frame_encoder(frames, embedding.expand(len(frames), -1))
            out = []
            for tick in range(episode.length):
                first = max(0, tick - history + 1)
                window = torch.zeros(1, history, *tokens.shape[1:])
                window[0, : tick + 1 - first] = tokens[first : tick + 1]
                step = torch.tensor(min(tick, history - 1))
                logits = model.policy(window, step)[0].numpy()
                out.append(codec.decode_logits(logits).tokens)
        return np.array(out)

    return _accuracy(space, episodes, store, predict)


def bundle_accuracy(
    bundle_dir: Path, store: TrainingStore, episodes: Sequence[EpisodeRecord]
) -> HeldOutAccuracy:
    """The exported bundle's accuracy through the runtime's Policy (ONNX Runtime, CPU)."""
    from rt_ros.runtime.onnx_session import SessionConfig
    from rt_ros.runtime.policy import Policy

    policy = Policy.from_bundle(bundle_dir, SessionConfig(providers=("cpu",)))

    def predict(episode: EpisodeRecord) -> np.ndarray:
        policy.reset(store.instructions[episode.instruction])
        out = []
        for tick in range(episode.length):
            frame = np.asarray(store.frames[episode.start + tick])
            out.append(policy.step(frame, float(tick)).tokens)
        return np.array(out)

    return _accuracy(policy.action_space, episodes, store, predict)


def held_out_validator(store_dir: Path) -> Callable[[RT1, Path, ActionSpace], dict]:
    """For `export_bundle(validate=...)`: both accuracies on the store's held-out episodes."""

    def validate(model: RT1, bundle_dir: Path, space: ActionSpace) -> dict:
        store = TrainingStore(store_dir)
        episodes = store.select("val")
        checkpoint = torch_accuracy(model, store, episodes, space)
        exported = bundle_accuracy(bundle_dir, store, episodes)
        return {
            "store": str(Path(store_dir).resolve()),
            "episodes": len(episodes),
            "pytorch": checkpoint.to_dict(),
            "onnx": exported.to_dict(),
        }

    return validate
