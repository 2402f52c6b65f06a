"""`rt-ros train` settings: one validated, frozen dataclass (errors name the field and value)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from rt_ros.runtime.action_space import DEFAULT_ACTION_SPACE
from rt_ros.train.augment import AugmentConfig
from rt_ros.train.topic_map import DEFAULT_TOPIC_MAP

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """What one training run reads, how it optimises and where it writes."""

    # Recordings to build the store from; empty: train on store_dir exactly as it was built
    # (a store prepared on another machine, say), with no recordings or sentence encoder here.
    data: tuple[Path, ...]
    out_dir: Path
    preset: str = "rt1-tiny"
    action_space: str = DEFAULT_ACTION_SPACE
    topic_map: str = DEFAULT_TOPIC_MAP
    # The training store (resized frames, tokens, embeddings); default: <out_dir>/store.
    store_dir: Path | None = None
    val_fraction: float = 0.05
    include_failed_demonstrations: bool = False
    # Length: epochs over every window of the training split, or max_steps when given.
    epochs: float = 20.0
    max_steps: int | None = None
    # A batch: chunks of consecutive frames (each frame encoded once), windows per chunk.
    chunks_per_batch: int = 3
    windows_per_chunk: int = 12
    learning_rate: float = 5e-4
    # The FiLM layers' (instruction conditioning) learning rate is this times learning_rate.
    film_lr_multiplier: float = 1.0
    # Loss weight of the ticks where the demonstrated action changes (rt_ros.train.keyframes):
    # by at least keyframe_min_change_bins on the arm's translation, the gripper or the mode.
    # 1: RT-1's loss, every tick alike.
    keyframe_weight: float = 1.0
    keyframe_min_change_bins: int = 2
    min_learning_rate_fraction: float = 0.05
    warmup_steps: int = 300
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    precision: str = "fp32"
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    val_every_steps: int = 500
    checkpoint_every_steps: int = 500
    log_every_steps: int = 20
    seed: int = 0
    # Start from these weights (a checkpoint or model file): fine-tuning, DAgger rounds.
    init_checkpoint: Path | None = None
    threads: int = 0  # torch intra-op threads; 0: one per core

    def __post_init__(self) -> None:
        if not self.data and self.store_dir is None:
            raise ValueError(
                "data: at least one folder of recordings is needed, or store_dir naming a built "
                "training store"
            )
        object.__setattr__(self, "data", tuple(Path(path) for path in self.data))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision ({self.precision!r}) must be one of {PRECISIONS}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction ({self.val_fraction!r}) must be in [0, 1)")
        if not (math.isfinite(self.epochs) and self.epochs > 0):
            raise ValueError(f"epochs ({self.epochs!r}) must be > 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps ({self.max_steps!r}) must be >= 1")
        for name in (
            "chunks_per_batch",
            "windows_per_chunk",
            "val_every_steps",
            "checkpoint_every_steps",
            "log_every_steps",
            "keyframe_min_change_bins",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} ({value!r}) must be an int >= 1")
        for name in ("learning_rate", "max_grad_norm", "film_lr_multiplier"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} ({value!r}) must be > 0")
        if not (math.isfinite(self.keyframe_weight) and self.keyframe_weight >= 1.0):
            raise ValueError(f"keyframe_weight ({self.keyframe_weight!r}) must be >= 1")
        if not 0.0 <= self.min_learning_rate_fraction <= 1.0:
            raise ValueError(
                f"min_learning_rate_fraction ({self.min_learning_rate_fraction!r}) must be in "
                "[0, 1]"
            )
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.threads < 0:
            raise ValueError("warmup_steps, weight_decay and threads must be >= 0")

    @property
    def store_path(self) -> Path:
        return Path(self.store_dir) if self.store_dir else self.out_dir / "store"
