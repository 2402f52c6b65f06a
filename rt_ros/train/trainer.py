"""`rt-ros train`: RT-1 trained from demonstrations, in one process or data-parallel (DDP).

RT-1's loss (cross-entropy over every action token of every step of each 6-frame window), AdamW
with linear warm-up and cosine decay, per-chunk image augmentation, windows built from frames
encoded once (rt_ros.train.windows), periodic validation on the held-out episodes, a CSV log and
PNG curves, `checkpoint.pt` for --resume and a weights-only `model.pt` that `rt-ros export
--checkpoint` turns into a bundle.

Under `torchrun` (WORLD_SIZE set) each process trains on its share of every batch and gradients
are averaged (DDP: NCCL on GPUs, gloo on CPUs); rank 0 builds the store, validates and writes.
Every rank writes the sha256 of its final weights, so a run can show that the ranks agree.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

import rt_ros
from rt_ros.model.film import FiLM
from rt_ros.model.presets import ModelPreset, get_preset
from rt_ros.model.rt1 import RT1
from rt_ros.runtime.action_space import ActionSpace, load_action_space
from rt_ros.train.augment import augment_chunks
from rt_ros.train.bag_reader import BagReader
from rt_ros.train.curves import CsvLog, plot_curves
from rt_ros.train.keyframes import keyframe_dimensions, keyframe_rows, keyframe_weights
from rt_ros.train.topic_map import load_topic_map
from rt_ros.train.train_config import TrainConfig
from rt_ros.train.training_store import (
    EpisodeRecord,
    StoreError,
    TrainingStore,
    build_store,
    open_built_store,
)
from rt_ros.train.windowed_model import IGNORE, TokenStats, WindowedRT1, window_loss
from rt_ros.train.windows import Chunk, batch_windows, plan_chunks

CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
TRAIN_LOG = "train_log.csv"
VAL_LOG = "val_log.csv"
CURVES_FILE = "curves.png"

ProgressCallback = Callable[[int, int, dict], None]


# ------------------------------------------------------------------------------- distributed
@dataclasses.dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def init_distributed() -> Distributed:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on GPUs, else gloo)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        return Distributed(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return Distributed(rank, world_size, local_rank, device)


# ------------------------------------------------------------------------------- pieces
def instruction_encoder_for_training(progress: Callable[[str], None] | None = None):
    """The ONNX sentence encoder every bundle ships (exported once per machine), so training
    embeddings are exactly those the robot computes."""
    from rt_ros.model.export import cached_instruction_encoder
    from rt_ros.runtime.instruction_encoder import build_instruction_encoder

    folder, spec = cached_instruction_encoder(progress or (lambda message: None))
    return build_instruction_encoder(spec, folder)


def learning_rate_factor(step: int, config: TrainConfig, total_steps: int) -> float:
    """Linear warm-up to 1, then cosine decay to min_learning_rate_fraction at total_steps."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    span = max(1, total_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.min_learning_rate_fraction
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _param_groups(
    model: nn.Module, weight_decay: float, learning_rate: float, film_lr_multiplier: float = 1.0
) -> list[dict]:
    """Weight decay on matrices and kernels only, not on biases, norms or position tables; the
    FiLM layers (instruction conditioning) at `film_lr_multiplier` times the learning rate."""
    groups: dict[tuple[bool, bool], list] = {}
    film_modules = {name for name, module in model.named_modules() if isinstance(module, FiLM)}
    for name, parameter in model.named_parameters():
        decays = parameter.ndim >= 2 and "position_embedding" not in name
        film = name.rsplit(".", 2)[0] in film_modules
        groups.setdefault((decays, film), []).append(parameter)
    return [
        {
            "params": params,
            "weight_decay": weight_decay if decays else 0.0,
            "lr": learning_rate * (film_lr_multiplier if film else 1.0),
        }
        for (decays, film), params in sorted(groups.items())
    ]


def load_model(path: Path) -> tuple[RT1, dict]:
    """An RT-1 from a checkpoint or model file: {'preset', 'model_state', ...}."""
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    model = RT1.from_preset(ModelPreset(**checkpoint["preset"]))
    model.load_state_dict(checkpoint["model_state"])
    return model, checkpoint


def state_sha256(model: nn.Module) -> str:
    """sha256 over every parameter and buffer, in state_dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(rt_ros.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return None
    return result.stdout.strip() or None


class _Batches:
    """Chunk order per epoch (one permutation from the seed) and each rank's share of a step."""

    def __init__(self, chunks: list[Chunk], config: TrainConfig, ranks: Distributed) -> None:
        self.chunks = chunks
        self.config = config
        self.ranks = ranks
        per_step = config.chunks_per_batch * ranks.world_size
        self.steps_per_epoch = max(1, len(chunks) // per_step)

    def for_step(self, step: int) -> list[Chunk]:
        epoch, index = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.chunks))
        per_rank = self.config.chunks_per_batch
        first = (index * self.ranks.world_size + self.ranks.rank) * per_rank
        return [self.chunks[i] for i in order[first : first + per_rank]]


def _targets(store: TrainingStore, rows: np.ndarray) -> torch.Tensor:
    """Tokens [W, T, A] of the ticks `rows` [W, T] (IGNORE where -1)."""
    tokens = torch.from_numpy(store.tokens[np.maximum(rows, 0)].astype(np.int64))
    tokens[torch.from_numpy(rows < 0)] = IGNORE
    return tokens


def _forward(
    module: nn.Module,
    store: TrainingStore,
    chunks: list[Chunk],
    history: int,
    device: torch.device,
    precision: str,
    augment=None,
    generator: torch.Generator | None = None,
    row_weights: np.ndarray | None = None,
) -> tuple[torch.Tensor, int, torch.Tensor]:
    """The loss of a batch of chunks; `row_weights` [store rows]: each tick's loss weight."""
    layout = batch_windows(chunks, history)
    frames = torch.from_numpy(np.ascontiguousarray(store.frames[layout.frame_rows]))
    if augment is not None:
        frames = augment_chunks(frames, torch.from_numpy(layout.frame_chunk), augment, generator)
    embedding = torch.from_numpy(store.embeddings[layout.frame_instruction])
    targets = _targets(store, layout.window_targets).to(device)
    step_weights = None
    if row_weights is not None:
        rows = layout.window_targets
        weights = np.where(rows >= 0, row_weights[np.maximum(rows, 0)], 0.0)
        step_weights = torch.from_numpy(weights.astype(np.float32)).to(device)
    with torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
    ):
        window_frames = torch.from_numpy(layout.window_frames).to(device)
        logits = module(frames.to(device), embedding.to(device), window_frames)
    return window_loss(logits, targets, step_weights)


def evaluate(
    model: RT1,
    store: TrainingStore,
    chunks: list[Chunk],
    device: torch.device,
    precision: str = "fp32",
    chunks_per_batch: int = 8,
) -> TokenStats:
    """Loss and token accuracy on every window of `chunks` (eval mode, no augmentation)."""
    module = WindowedRT1(model).to(device)
    was_training = model.training
    model.eval()
    stats = TokenStats()
    history = model.preset.history_length
    with torch.no_grad():
        for first in range(0, len(chunks), chunks_per_batch):
            batch = chunks[first : first + chunks_per_batch]
            loss, steps, correct = _forward(module, store, batch, history, device, precision)
            dims = len(correct)
            stats.add(float(loss) * steps * dims, steps, correct.cpu())
    model.train(was_training)
    return stats


# ------------------------------------------------------------------------------- training
def _keyframe_weights(
    config: TrainConfig,
    store: TrainingStore,
    episodes: list[EpisodeRecord],
    say: Callable[[str], None],
) -> np.ndarray | None:
    """Per store row, the loss weight of its tick (None: RT-1's loss, every tick alike)."""
    if config.keyframe_weight == 1.0:
        return None
    space = ActionSpace.from_dict(store.action_space)
    flags = keyframe_rows(
        store.tokens, episodes, keyframe_dimensions(space), config.keyframe_min_change_bins
    )
    ticks = sum(episode.length for episode in episodes)
    say(
        f"keyframe weight {config.keyframe_weight:g} on {int(flags.sum())} of {ticks} training "
        f"ticks (the action changes by >= {config.keyframe_min_change_bins} bins)"
    )
    return keyframe_weights(flags, config.keyframe_weight)


def _store(config: TrainConfig, ranks: Distributed, say: Callable[[str], None]) -> TrainingStore:
    preset = get_preset(config.preset)
    if not config.data:
        store = open_built_store(config.store_path, load_action_space(config.action_space))
        say(f"training on the built store {config.store_path} as it is (no recordings given)")
    else:
        store = _build(config, preset, ranks, say)
    if store.image_size_px != (preset.image_height_px, preset.image_width_px):
        raise StoreError(
            f"store {config.store_path} holds {store.image_size_px} px frames but preset "
            f"{preset.name} takes {(preset.image_height_px, preset.image_width_px)}"
        )
    return store


def _build(
    config: TrainConfig, preset: ModelPreset, ranks: Distributed, say: Callable[[str], None]
) -> TrainingStore:
    if ranks.is_main:
        space = load_action_space(config.action_space)
        reader = BagReader(load_topic_map(config.topic_map), space)
        encoder = instruction_encoder_for_training(say)
        say(f"building the training store at {config.store_path} (once per data set)")
        build_store(
            config.data,
            config.store_path,
            reader,
            encoder,
            (preset.image_height_px, preset.image_width_px),
            config.val_fraction,
        )
    ranks.barrier()
    return TrainingStore(config.store_path)


def train(
    config: TrainConfig,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    say: Callable[[str], None] | None = None,
) -> dict:
    """Run (or resume) a training run; returns the final summary written to run.json."""
    say = say or (lambda message: None)
    ranks = init_distributed()
    if config.threads:
        torch.set_num_threads(config.threads)
    out = config.out_dir
    if ranks.is_main:
        out.mkdir(parents=True, exist_ok=True)
    ranks.barrier()
    store = _store(config, ranks, say)
    preset = get_preset(config.preset)
    history = preset.history_length
    train_episodes = store.select("train", config.include_failed_demonstrations)
    val_episodes = store.select("val", config.include_failed_demonstrations)
    if not train_episodes:
        raise ValueError(f"no training episodes in {config.data or config.store_path}")
    train_chunks = plan_chunks(train_episodes, history, config.windows_per_chunk)
    val_chunks = plan_chunks(val_episodes, history, config.windows_per_chunk)
    batches = _Batches(train_chunks, config, ranks)
    row_weights = _keyframe_weights(config, store, train_episodes, say)
    total_steps = config.max_steps or max(1, round(config.epochs * batches.steps_per_epoch))

    checkpoint_path = out / CHECKPOINT_FILE
    start_step = 0
    checkpoint = None
    if resume and checkpoint_path.is_file():
        model, checkpoint = load_model(checkpoint_path)
        start_step = int(checkpoint["step"])
        say(f"resuming {checkpoint_path} at step {start_step} of {total_steps}")
    elif config.init_checkpoint is not None:
        model, _ = load_model(config.init_checkpoint)
        if model.preset.name != preset.name:
            raise ValueError(
                f"init checkpoint {config.init_checkpoint} is preset {model.preset.name}, "
                f"not {preset.name}"
            )
        say(f"starting from the weights of {config.init_checkpoint}")
    else:
        model = RT1.from_preset(preset, seed=config.seed)
    model.to(ranks.device).train()
    module: nn.Module = WindowedRT1(model)
    if ranks.world_size > 1:
        device_ids = [ranks.local_rank] if ranks.device.type == "cuda" else None
        module = nn.parallel.DistributedDataParallel(module, device_ids=device_ids)
    optimizer = torch.optim.AdamW(
        _param_groups(model, config.weight_decay, config.learning_rate, config.film_lr_multiplier),
        lr=config.learning_rate,
        betas=(0.9, 0.99),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, config, total_steps)
    )
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer_state"])
        scheduler.load_state_dict(checkpoint["scheduler_state"])
    names = [dimension["name"] for dimension in store.action_space["dimensions"]]
    train_log = val_log = None
    if ranks.is_main:
        train_log = CsvLog(
            out / TRAIN_LOG,
            ["step", "epoch", "lr", "loss", "token_accuracy", "frames_per_s", "wall_s"],
        )
        val_log = CsvLog(
            out / VAL_LOG,
            ["step", "epoch", "val_loss", "val_acc", *[f"val_acc_{n}" for n in names]],
        )
        # Rows past the starting step belong to an earlier, unfinished run.
        train_log.truncate_after(start_step)
        val_log.truncate_after(start_step)
    generator = torch.Generator().manual_seed(config.seed * 1000 + ranks.rank + start_step)
    started = time.monotonic()
    window = TokenStats()
    frames_seen = 0
    interval_started = time.monotonic()
    last_val: dict = {}
    for step in range(start_step, total_steps):
        chunks = batches.for_step(step)
        loss, steps, correct = _forward(
            module, store, chunks, history, ranks.device, config.precision,
            config.augment, generator, row_weights,
        )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        window.add(loss.item() * steps * len(correct), steps, correct.cpu())
        frames_seen += sum(chunk.length for chunk in chunks)
        done = step + 1
        epoch = done / batches.steps_per_epoch
        if ranks.is_main and (done % config.log_every_steps == 0 or done == total_steps):
            elapsed = time.monotonic() - interval_started
            row = {
                "step": done,
                "epoch": round(epoch, 3),
                "lr": scheduler.get_last_lr()[0],
                "loss": window.loss,
                "token_accuracy": window.accuracy,
                "frames_per_s": frames_seen / max(elapsed, 1e-9),
                "wall_s": round(time.monotonic() - started, 1),
            }
            train_log.append(row)
            if progress is not None:
                progress(done, total_steps, row)
            window, frames_seen, interval_started = TokenStats(), 0, time.monotonic()
        if done % config.val_every_steps == 0 or done == total_steps:
            _sync_buffers(model, ranks)
            if ranks.is_main and val_chunks:
                stats = evaluate(model, store, val_chunks, ranks.device, config.precision)
                per_dim = zip(names, stats.accuracy_per_dim, strict=True)
                last_val = {
                    "step": done,
                    "epoch": round(epoch, 3),
                    "val_loss": stats.loss,
                    "val_acc": stats.accuracy,
                    **{f"val_acc_{name}": accuracy for name, accuracy in per_dim},
                }
                val_log.append(last_val)
                plot_curves(train_log.read(), val_log.read(), names, out / CURVES_FILE)
                if progress is not None:
                    progress(done, total_steps, last_val)
        if ranks.is_main and (done % config.checkpoint_every_steps == 0 or done == total_steps):
            _save(checkpoint_path, model, optimizer, scheduler, done, config, store)
    _sync_buffers(model, ranks)
    (out / f"rank{ranks.rank}_weights.sha256").write_text(state_sha256(model) + "\n")
    summary = {}
    if ranks.is_main:
        summary = _finish(out, model, config, store, total_steps, time.monotonic() - started,
                          last_val, ranks)  # fmt: skip
    ranks.barrier()
    if ranks.world_size > 1:
        dist.destroy_process_group()
    return summary


def _sync_buffers(model: nn.Module, ranks: Distributed) -> None:
    """BatchNorm running statistics from rank 0 everywhere (DDP syncs parameters only)."""
    if ranks.world_size > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)


def _provenance(config: TrainConfig, store: TrainingStore) -> dict:
    return {
        "weights": "trained by rt-ros train",
        "training_run": str(config.out_dir.resolve()),
        "code": {"rt_ros": rt_ros.__version__, "git_commit": _git_commit()},
        "data": {
            "recordings": (
                [str(Path(path).resolve()) for path in config.data]
                if config.data
                else store.recording_folders()
            ),
            "store": str(config.store_path.resolve()),
            "store_fingerprint": store.meta["fingerprint"],
            "episodes": store.summary(),
            "instructions": len(store.instructions),
            "camera_rig": store.camera_rig,
        },
    }


def _save(path: Path, model, optimizer, scheduler, step: int, config, store) -> None:
    """checkpoint.pt, written atomically (a resumed run never reads half a file)."""
    payload = {
        "preset": asdict(model.preset),
        "model_state": model.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "scheduler_state": scheduler.state_dict(),
        "step": step,
        "config": json.loads(json.dumps(asdict(config), default=str)),
        "provenance": _provenance(config, store),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    partial = path.with_suffix(".partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(path)


def _finish(out, model, config, store, steps, wall_s, last_val, ranks) -> dict:
    """model.pt (weights only, with provenance and validation figures) and run.json."""
    provenance = _provenance(config, store)
    provenance["training"] = {
        "steps": steps,
        "wall_s": round(wall_s, 1),
        "processes": ranks.world_size,
        "device": str(ranks.device),
        "precision": config.precision,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "config": json.loads(json.dumps(asdict(config), default=str)),
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    provenance["validation"] = {
        key: value for key, value in last_val.items() if not key.startswith("val_acc_")
    } | {"per_dimension": {k[8:]: v for k, v in last_val.items() if k.startswith("val_acc_")}}
    payload = {
        "preset": asdict(model.preset),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "provenance": provenance,
    }
    torch.save(payload, out / MODEL_FILE)
    (out / "run.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return provenance
