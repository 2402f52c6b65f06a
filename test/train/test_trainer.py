"""Training: a short run on a few episodes lowers the loss, its model exports to a bundle that
loads and decides as the checkpoint does on held-out episodes, a run resumes, and two DDP
processes (gloo) end with the same weights."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rt_ros.model.export import export_bundle
from rt_ros.model.rt1 import RT1
from rt_ros.runtime.action_space import load_action_space
from rt_ros.runtime.policy import Policy
from rt_ros.train.held_out_accuracy import held_out_validator, torch_accuracy
from rt_ros.train.train_config import TrainConfig
from rt_ros.train.trainer import evaluate, load_model, train
from rt_ros.train.windows import plan_chunks


def _config(store, recorded, out: Path, **changes) -> TrainConfig:
    settings = {
        "data": (recorded,),
        "out_dir": out,
        "store_dir": store.folder,
        "val_fraction": 0.3,  # as the session's store was built
        "max_steps": 40,
        "learning_rate": 1e-3,
        "warmup_steps": 5,
        "augment": None,
        "val_every_steps": 20,
        "checkpoint_every_steps": 20,
        "log_every_steps": 10,
        "threads": 2,
    }
    return TrainConfig(**(settings | changes))


@pytest.fixture(scope="module")
def short_run(training_store, recorded_episodes, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = _config(training_store, recorded_episodes, out)
    summary = train(config)
    return config, summary


def _loss(model: RT1, store) -> float:
    chunks = plan_chunks(store.select("train"), 6, 8)
    return evaluate(model, store, chunks, torch.device("cpu")).loss


def test_a_short_run_lowers_the_loss(short_run, training_store):
    config, summary = short_run
    untrained = RT1.from_preset("rt1-tiny", seed=config.seed)
    trained, _ = load_model(config.out_dir / "model.pt")
    before, after = _loss(untrained, training_store), _loss(trained, training_store)
    assert before > 4.0  # about ln(256): nothing learnt
    assert after < 0.6 * before
    assert summary["training"]["steps"] == 40
    with open(config.out_dir / "train_log.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["step"]) for row in rows] == [10, 20, 30, 40]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert (config.out_dir / "curves.png").stat().st_size > 10_000
    assert summary["validation"]["step"] == 40
    assert set(summary["validation"]["per_dimension"]) == set(load_action_space().names)


def test_checkpoint_exports_loads_and_matches_on_held_out_episodes(
    short_run, training_store, tmp_path
):
    config, _ = short_run
    bundle = tmp_path / "bundle"
    manifest = export_bundle(
        bundle,
        checkpoint=config.out_dir / "model.pt",
        validate=held_out_validator(training_store.folder),
    )
    provenance = manifest.provenance
    assert provenance["weights"] == "trained by rt-ros train"
    assert provenance["data"]["store"] == str(training_store.folder.resolve())
    assert provenance["training"]["steps"] == 40
    assert "validation" in provenance
    assert not any("UNTRAINED" in line for line in manifest.deviations)
    held_out = provenance["held_out"]
    assert held_out["episodes"] == len(training_store.select("val")) > 0
    assert held_out["onnx"]["per_dimension"] == held_out["pytorch"]["per_dimension"]
    policy = Policy.from_bundle(bundle)
    policy.reset(training_store.instructions[0])
    action = policy.step(np.zeros((256, 320, 3), np.uint8), 0.0)
    assert len(action.tokens) == 11
    # The recorded figure is the checkpoint's own accuracy, ticked as the robot ticks.
    model, _ = load_model(config.out_dir / "model.pt")
    again = torch_accuracy(
        model, training_store, training_store.select("val"), load_action_space()
    )
    assert again.to_dict() == held_out["pytorch"]


def test_a_run_resumes_from_its_checkpoint(training_store, recorded_episodes, tmp_path):
    first = _config(training_store, recorded_episodes, tmp_path, max_steps=20)
    train(first)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 20
    longer = _config(training_store, recorded_episodes, tmp_path, max_steps=30)
    summary = train(longer, resume=True)
    assert summary["training"]["steps"] == 30
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 30
    with open(tmp_path / "train_log.csv") as file:
        steps = [int(row["step"]) for row in csv.DictReader(file)]
    assert steps == [10, 20, 30]


def test_a_run_trains_on_a_built_store_alone(training_store, recorded_episodes, tmp_path):
    """No recordings given: the store is used as built (one prepared elsewhere, say)."""
    config = _config(training_store, recorded_episodes, tmp_path, data=(), max_steps=10)
    summary = train(config)
    assert summary["training"]["steps"] == 10
    assert summary["data"]["recordings"] == training_store.recording_folders()
    assert summary["data"]["store_fingerprint"] == training_store.meta["fingerprint"]
    with pytest.raises(ValueError, match="store_dir naming a built training store"):
        _config(training_store, recorded_episodes, tmp_path, data=(), store_dir=None)


def test_two_ddp_processes_end_with_the_same_weights(training_store, recorded_episodes, tmp_path):
    """torchrun with two gloo processes on the CPU: gradients averaged, BatchNorm statistics
    shared from rank 0, so every rank holds the same model at the end."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "rt_ros.cli", "train",
        "--data", str(recorded_episodes), "--store", str(training_store.folder),
        "--val-fraction", "0.3", "--out", str(tmp_path), "--max-steps", "4",
        "--chunks-per-batch", "2", "--warmup-steps", "1", "--val-every", "4", "--threads", "1",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    digests = [(tmp_path / f"rank{rank}_weights.sha256").read_text() for rank in (0, 1)]
    assert digests[0] == digests[1]
    model, checkpoint = load_model(tmp_path / "model.pt")
    assert checkpoint["provenance"]["training"]["processes"] == 2
    untrained = RT1.from_preset("rt1-tiny", seed=0)
    assert not torch.equal(
        model.state_dict()["policy.transformer.to_logits.weight"],
        untrained.state_dict()["policy.transformer.to_logits.weight"],
    )


def test_film_layers_get_their_own_learning_rate():
    from rt_ros.model.film import FiLM
    from rt_ros.train.trainer import _param_groups

    model = RT1.from_preset("rt1-tiny", seed=0)
    groups = _param_groups(model, weight_decay=0.01, learning_rate=1e-4, film_lr_multiplier=10.0)
    film = {id(p) for m in model.modules() if isinstance(m, FiLM) for p in m.parameters()}
    names = {id(p): name for name, p in model.named_parameters()}
    seen = 0
    for group in groups:
        for parameter in group["params"]:
            seen += 1
            expected = 1e-3 if id(parameter) in film else 1e-4
            assert group["lr"] == pytest.approx(expected)
            decays = parameter.ndim >= 2 and "position_embedding" not in names[id(parameter)]
            assert group["weight_decay"] == (0.01 if decays else 0.0)
    assert seen == len(list(model.parameters()))
    with pytest.raises(ValueError, match="film_lr_multiplier"):
        TrainConfig(data=(Path("x"),), out_dir=Path("y"), film_lr_multiplier=0.0)
