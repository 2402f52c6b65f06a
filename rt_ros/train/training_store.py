"""The training store: episodes from recordings, prepared once and read fast every epoch.

A folder holding
- `frames.u8`: every tick's frame resized once to the model's input (the runtime's own resize),
  uint8 [N, H, W, 3], read through a memory map;
- `tokens.npy`: int16 [N, A] action tokens in the profile's order;
- `embeddings.npy`: float32 [K, E], one instruction embedding per distinct string, from the same
  ONNX sentence encoder the robot runs;
- `store.json`: the shapes, the profile, the encoder, and per episode its recording, frames,
  instruction, family, seed, success, source (expert, dagger, robot) and split (train or val:
  a held-out split by episode, from a hash of the recording, so it never changes with the set of
  recordings read alongside).
A store is rebuilt only when the recordings, the image size, the profile or the encoder differ.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rt_ros.runtime.action_space import ActionSpace
from rt_ros.runtime.errors import RtRosError
from rt_ros.runtime.frame_preprocess import resize_frame
from rt_ros.runtime.instruction_encoder import InstructionEncoder
from rt_ros.sim.camera_rig import UNNAMED_SIM_RIG
from rt_ros.train.bag_reader import BagReader, Episode, find_recordings

FORMAT_VERSION = 1
STORE_FILE = "store.json"
FRAMES_FILE = "frames.u8"
TOKENS_FILE = "tokens.npy"
EMBEDDINGS_FILE = "embeddings.npy"
SPLITS = ("train", "val")


class StoreError(RtRosError, ValueError):
    """A training store that cannot be used as asked: missing, damaged, or of another shape."""


@dataclass(frozen=True)
class EpisodeRecord:
    """Where one episode's ticks sit in the store, and what it is."""

    source: str
    start: int
    length: int
    instruction: int  # row of embeddings.npy
    split: str  # train | val
    success: bool | None
    origin: str  # expert | dagger | recording
    family: str | None = None
    seed: int | None = None
    # The simulator's head camera rig (rt_ros.sim.camera_rig); None for a real robot's bag.
    camera_rig: str | None = None


def recording_of(source: str) -> Path:
    """The recording an episode's source names (`path` or `path#index` for one of several)."""
    return Path(source.split("#")[0])


def validation_split(source: str, val_fraction: float) -> str:
    """`val` for a stable `val_fraction` of recordings (by a hash of the name), else `train`."""
    digest = hashlib.sha256(recording_of(source).name.encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") / 2**64 < val_fraction else "train"


def _fingerprint(recordings: Sequence[Path], settings: dict[str, Any]) -> str:
    """What a store was built from: each recording's path, size and time, and the settings."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for recording in recordings:
        files = [recording] if recording.is_file() else sorted(recording.iterdir())
        for path in files:
            stat = path.stat()
            digest.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


class TrainingStore:
    """A built store, memory-mapped: frames, tokens, embeddings and the episode table."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        meta = json.loads((self.folder / STORE_FILE).read_text(encoding="utf-8"))
        self.meta = meta
        self.image_size_px = (meta["image_height_px"], meta["image_width_px"])
        self.frames = np.memmap(
            self.folder / FRAMES_FILE,
            dtype=np.uint8,
            mode="r",
            shape=(meta["frames"], *self.image_size_px, 3),
        )
        self.tokens = np.load(self.folder / TOKENS_FILE)
        self.embeddings = np.load(self.folder / EMBEDDINGS_FILE)
        self.instructions: list[str] = meta["instructions"]
        self.episodes = [EpisodeRecord(**record) for record in meta["episodes"]]
        self.action_space: dict = meta["action_space"]

    def select(
        self, split: str, include_failed_demonstrations: bool = False
    ) -> list[EpisodeRecord]:
        """The episodes of a split; failed expert episodes only when asked (DAgger episodes
        always count: their labels are the expert's whatever the robot did)."""
        return [
            episode
            for episode in self.episodes
            if episode.split == split
            and (include_failed_demonstrations or episode.origin != "expert" or episode.success)
        ]

    def recording_folders(self) -> list[str]:
        """The folders of the recordings the store was built from, as recorded at build time."""
        return sorted({str(recording_of(episode.source).parent) for episode in self.episodes})

    @property
    def camera_rig(self) -> str | None:
        """The simulator camera rig its episodes were seen through (one per store), or None."""
        return next((e.camera_rig for e in self.episodes if e.camera_rig is not None), None)

    def summary(self) -> dict[str, Any]:
        """Episode and frame counts per split and origin."""
        counts: dict[str, Any] = {}
        for episode in self.episodes:
            key = f"{episode.split}/{episode.origin}"
            entry = counts.setdefault(key, {"episodes": 0, "frames": 0})
            entry["episodes"] += 1
            entry["frames"] += episode.length
        return counts


def open_built_store(folder: Path, space: ActionSpace) -> TrainingStore:
    """A store built earlier, opened without its recordings; refused when it is missing or
    incomplete, or when its action profile is not `space` (its tokens would mean other things)."""
    folder = Path(folder)
    missing = [
        name
        for name in (STORE_FILE, FRAMES_FILE, TOKENS_FILE, EMBEDDINGS_FILE)
        if not (folder / name).is_file()
    ]
    if missing:
        raise StoreError(
            f"no complete training store at {folder} (missing {', '.join(missing)}): build one "
            "by giving the recordings (rt-ros train --data ...)"
        )
    try:
        meta = json.loads((folder / STORE_FILE).read_text(encoding="utf-8"))
        frames = int(meta["frames"])
        expected_bytes = frames * int(meta["image_height_px"]) * int(meta["image_width_px"]) * 3
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise StoreError(f"training store {folder}: unreadable {STORE_FILE} ({error})") from None
    frames_bytes = (folder / FRAMES_FILE).stat().st_size
    if frames_bytes != expected_bytes:
        raise StoreError(
            f"training store {folder} is damaged: {FRAMES_FILE} holds {frames_bytes} bytes, "
            f"{expected_bytes} expected for {frames} frames"
        )
    store = TrainingStore(folder)
    if len(store.tokens) != frames:
        raise StoreError(
            f"training store {folder} is damaged: {len(store.tokens)} token rows for "
            f"{frames} frames"
        )
    if store.action_space != space.to_dict():
        raise StoreError(
            f"training store {folder} holds tokens of action space "
            f"{store.action_space.get('name')!r}, not {space.name!r}"
        )
    return store


def build_store(
    recordings_or_folders: Sequence[Path],
    out_dir: Path,
    reader: BagReader,
    encoder: InstructionEncoder,
    image_size_px: tuple[int, int],
    val_fraction: float = 0.05,
    on_recording: Callable[[Path, int], None] | None = None,
) -> TrainingStore:
    """Read every recording, resize its frames once, embed each distinct instruction once and
    write the store to `out_dir`; an up-to-date store there is reused as it is."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction ({val_fraction!r}) must be in [0, 1)")
    recordings = find_recordings(list(recordings_or_folders))
    if not recordings:
        raise ValueError(
            f"no recordings (.mcap files or rosbag2 folders) under {list(recordings_or_folders)}"
        )
    space: ActionSpace = reader.space
    settings = {
        "format_version": FORMAT_VERSION,
        "image_size_px": list(image_size_px),
        "action_space": space.to_dict(),
        "topic_map": asdict(reader.topic_map),
        "encoder": encoder.name,
        "val_fraction": val_fraction,
    }
    fingerprint = _fingerprint(recordings, settings)
    out_dir = Path(out_dir)
    meta_path = out_dir / STORE_FILE
    if meta_path.is_file():
        try:
            if json.loads(meta_path.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
                return TrainingStore(out_dir)
        except (OSError, json.JSONDecodeError):
            pass
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    height, width = image_size_px
    instructions: dict[str, int] = {}
    episodes: list[dict[str, Any]] = []
    tokens: list[np.ndarray] = []
    count = 0
    first_rig: EpisodeRecord | None = None  # the first episode that named a camera rig
    with open(staging / FRAMES_FILE, "wb") as frames_file:
        for recording in recordings:
            read = 0
            for episode in reader.episodes(recording):
                for frame in episode.frames:
                    frames_file.write(resize_frame(frame, height, width).tobytes())
                tokens.append(episode.tokens.astype(np.int16))
                row = instructions.setdefault(episode.instruction.strip(), len(instructions))
                record = _record(episode, count, row, val_fraction)
                first_rig = _check_one_rig(record, first_rig)
                episodes.append(asdict(record))
                count += len(episode)
                read += 1
            if on_recording is not None:
                on_recording(recording, read)
    np.save(staging / TOKENS_FILE, np.concatenate(tokens))
    embeddings = np.stack([encoder.encode(text) for text in instructions]).astype(np.float32)
    np.save(staging / EMBEDDINGS_FILE, embeddings)
    meta = {
        **settings,
        "fingerprint": fingerprint,
        "image_height_px": height,
        "image_width_px": width,
        "frames": count,
        "embedding_dim": int(embeddings.shape[1]),
        "instructions": list(instructions),
        "episodes": episodes,
    }
    (staging / STORE_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return TrainingStore(out_dir)


def _check_one_rig(record: EpisodeRecord, first: EpisodeRecord | None) -> EpisodeRecord | None:
    """Refuse simulated episodes seen through two camera rigs (a model learns one view); returns
    the first episode that named a rig, to check the next ones against."""
    if record.camera_rig is None:
        return first
    if first is not None and first.camera_rig != record.camera_rig:
        raise StoreError(
            f"{record.source} was recorded with camera rig {record.camera_rig!r} but "
            f"{first.source} with {first.camera_rig!r}: a model learns one camera's view; train "
            "on the recordings of one rig"
        )
    return first or record


def _record(episode: Episode, start: int, instruction: int, val_fraction: float) -> EpisodeRecord:
    info = episode.info
    return EpisodeRecord(
        source=episode.source,
        start=start,
        length=len(episode),
        instruction=instruction,
        split=validation_split(episode.source, val_fraction),
        success=episode.success,
        origin=info.get("source", "recording"),
        family=info.get("family"),
        seed=info.get("seed"),
        camera_rig=info.get("camera_rig") or (UNNAMED_SIM_RIG if "family" in info else None),
    )
