"""The `rt-ros` command: export model bundles and benchmark them ."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from rt_ros.model.presets import PRESETS
from rt_ros.runtime.errors import ConfigError, RtRosError

if TYPE_CHECKING:  # imported where used: `rt-ros --help` stays fast
    from rt_ros.runtime.backend_agreement import AgreementEpisode, AgreementResult
    from rt_ros.runtime.onnx_session import SessionConfig
    from rt_ros.runtime.policy import Policy
    from rt_ros.sim.image_motion import ImageMotion
    from rt_ros.sim.world import SimWorld

PRESET_CHOICES = tuple(PRESETS)
# `rt-ros bench`: the backend every other is compared with, and the recorded frames it uses.
REFERENCE_BACKEND = "cpu"
DEFAULT_RECORDINGS = (Path("data/expert"),)
AGREEMENT_WINDOWS_PER_EPISODE = 20
FAMILY_CHOICES = ("pick", "move_near", "knock_over", "place_upright", "drawer")
console = Console(stderr=True)
WIDE = 140  # tables stay readable when stdout is not a terminal
BENCH_WIDE = 170  # the backend table: p50 / p99 of five stages and two ratios on one line


def _held_out_store(checkpoint: Path, store: Path | None) -> Path | None:
    """The store whose held-out episodes check an exported checkpoint: the one given, else the
    one it was trained on if it is still there."""
    if store is not None:
        if not (store / "store.json").is_file():
            raise ConfigError(f"--store {store}: not a training store (no store.json)")
        return store
    import torch

    provenance = torch.load(checkpoint, map_location="cpu", weights_only=True).get("provenance")
    recorded = ((provenance or {}).get("data") or {}).get("store")
    if recorded and (Path(recorded) / "store.json").is_file():
        return Path(recorded)
    console.log(f"{checkpoint}: its training store is gone; no held-out accuracy is recorded")
    return None


def _export_with_progress(
    out: Path,
    preset: str,
    checkpoint: Path | None,
    seed: int,
    action_space: str,
    store: Path | None = None,
    held_out: bool = True,
) -> None:
    # torch is needed only here: a robot install without the `train` extra can still bench.
    from rt_ros.model.export import export_bundle

    validate = None
    if checkpoint is not None and held_out:
        held_out = _held_out_store(checkpoint, store)
        if held_out is not None:
            from rt_ros.train.held_out_accuracy import held_out_validator

            validate = held_out_validator(held_out)

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True
    ) as progress:
        task = progress.add_task(f"export {preset}", total=None)

        def say(message: str) -> None:
            progress.update(task, description=f"export {preset}: {message}")
            console.log(f"{preset}: {message}")

        manifest = export_bundle(
            out,
            preset,
            checkpoint=checkpoint,
            seed=seed,
            action_space=action_space,
            progress=say,
            validate=validate,
        )
    parity = manifest.provenance["parity"]
    console.print(
        f"[green]wrote {out}[/green] (preset {manifest.preset}, "
        f"{manifest.image.width_px}x{manifest.image.height_px} px, "
        f"max |logit diff| ONNX vs PyTorch {parity['max_logit_difference']:.1e}, "
        f"argmax identical: {parity['argmax_identical']})"
    )
    held_out = manifest.provenance.get("held_out")
    if held_out:
        console.print(
            f"held-out token accuracy over {held_out['pytorch']['ticks']} ticks: PyTorch "
            f"{held_out['pytorch']['token_accuracy']:.4f}, ONNX bundle "
            f"{held_out['onnx']['token_accuracy']:.4f}"
        )


def _cmd_export(args: argparse.Namespace) -> int:
    if args.shipped:
        return _export_shipped(args.out)
    if args.out is None:
        raise ConfigError("export needs --out (or --shipped for the default bundle)")
    _export_with_progress(
        args.out, args.preset, args.checkpoint, args.seed, args.action_space, args.store
    )
    return 0


def _export_shipped(out: Path | None) -> int:
    """The shipped weights -> the default bundle (or `out`), unless it is already current."""
    from rt_ros.model.shipped import DEFAULT_BUNDLE, bundle_is_current, shipped_weights
    from rt_ros.paths import share_dir

    folder = out or share_dir() / DEFAULT_BUNDLE
    weights = shipped_weights()
    if bundle_is_current(folder, weights):
        console.print(f"{folder} is up to date with {weights or 'seeded random weights'}")
        return 0
    if weights is None:
        console.print("[yellow]no trained weights are shipped: the bundle is UNTRAINED[/yellow]")
    _export_with_progress(folder, "rt1-tiny", weights, 0, "rt1_everyday_robots", held_out=False)
    return 0


def _cmd_precompute(args: argparse.Namespace) -> int:
    from rt_ros.model.precomputed_bundle import distinct_instructions, precompute_instructions
    from rt_ros.runtime.benchmark import BENCH_INSTRUCTION
    from rt_ros.train.bag_reader import BagReader, find_recordings
    from rt_ros.train.topic_map import load_topic_map

    texts = list(args.instructions or [])
    if args.instructions_file:
        try:
            lines = args.instructions_file.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ConfigError(f"--instructions-file: {error}") from None
        texts += [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if args.recordings:
        from rt_ros.runtime.manifest import BundleManifest

        space = BundleManifest.load(args.model).action_space
        reader = BagReader(load_topic_map(), space)
        for recording in find_recordings(args.recordings):
            texts += [episode.instruction for episode in reader.episodes(recording)]
    if args.bench_instruction:
        texts.append(BENCH_INSTRUCTION)
    out = precompute_instructions(args.model, args.out, texts)
    count = len(distinct_instructions(texts))
    console.print(f"wrote {out}: {args.model} with {count} precomputed instructions")
    return 0


def _bench_bundle_for(preset: str) -> Path:
    """A seeded random bundle of the preset, exported once into the cache."""
    from rt_ros.model.export import cache_dir

    folder = cache_dir() / "bundles" / f"{preset}-seed0"
    if not (folder / "manifest.yaml").is_file():
        _export_with_progress(folder, preset, None, 0, "rt1_everyday_robots")
    return folder


def _bench_session_configs(args: argparse.Namespace) -> dict[str, SessionConfig]:
    """label -> SessionConfig for each `--backends` entry, ONNX Runtime fp32 on the CPU first
    (the reference every ratio and agreement is measured against)."""
    from rt_ros.runtime.onnx_session import SessionConfig
    from rt_ros.runtime.openvino_session import openvino_installed

    specs = list(args.backends or [])
    if not specs:
        specs = ["cpu", "openvino:f32", "openvino:bf16"] if openvino_installed() else ["cpu"]
    configs = {}
    for spec in [REFERENCE_BACKEND, *(spec for spec in specs if spec != REFERENCE_BACKEND)]:
        providers, _, rest = spec.partition(":")
        precision, _, optimization = rest.partition(":")
        try:
            configs[spec] = SessionConfig(
                providers=tuple(providers.split(",")),
                precision=precision or "f32",
                graph_optimization=optimization or "all",
                intra_op_threads=args.threads,
                use_cuda_graph=args.cuda_graph,
                spin_wait=args.spin_wait,
            )
        except ConfigError as error:
            raise ConfigError(f"--backends {spec}: {error}") from error
    return configs


def _agreement_episodes(
    recordings: list[Path], policy: Policy, frames_per_episode: int
) -> Iterator[AgreementEpisode]:
    """Episodes of the recordings for the agreement check: one recording of each folder (task
    family) in turn, so a few hundred windows span every family."""
    from rt_ros.runtime.backend_agreement import AgreementEpisode
    from rt_ros.train.bag_reader import BagReader, find_recordings
    from rt_ros.train.topic_map import load_topic_map

    by_folder: dict[Path, list[Path]] = {}
    for recording in find_recordings(recordings):
        by_folder.setdefault(recording.parent, []).append(recording)
    reader = BagReader(load_topic_map(), policy.bundle.manifest.action_space)
    queues = list(by_folder.values())
    for round_index in range(max(map(len, queues), default=0)):
        for queue in queues:
            if round_index < len(queue):
                for episode in reader.episodes(queue[round_index]):
                    frames = episode.frames[:frames_per_episode]
                    yield AgreementEpisode(episode.instruction, frames)


def _cmd_bench(args: argparse.Namespace) -> int:
    from rt_ros.runtime.backend_agreement import measure_agreement
    from rt_ros.runtime.benchmark import STAGES, run_benchmark
    from rt_ros.runtime.policy import Policy

    targets = [(path.name, path) for path in args.model or []]
    if not targets:
        targets = [(preset, _bench_bundle_for(preset)) for preset in args.preset]
    configs = _bench_session_configs(args)
    recordings = args.recordings or [path for path in DEFAULT_RECORDINGS if path.exists()]
    if args.agreement_windows and not recordings:
        console.log("no recordings (--recordings): action-token agreement is not measured")
    results, agreements = [], []
    for name, path in targets:
        policies = {label: Policy.from_bundle(path, config) for label, config in configs.items()}
        with Progress(
            TextColumn(f"bench {name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(name, total=args.steps)
            results.append(
                run_benchmark(
                    name, policies, args.steps, on_step=lambda t=task: progress.advance(t)
                )
            )
            if args.agreement_windows and recordings:
                task = progress.add_task(name, total=args.agreement_windows)
                history = policies[REFERENCE_BACKEND].bundle.manifest.history_length
                episodes = _agreement_episodes(
                    recordings,
                    policies[REFERENCE_BACKEND],
                    history - 1 + AGREEMENT_WINDOWS_PER_EPISODE,
                )
                agreement = measure_agreement(
                    policies,
                    episodes,
                    args.agreement_windows,
                    on_window=lambda t=task: progress.advance(t),
                )
                agreements.append((name, agreement))

    table = Table(
        title="policy step latency, ms (p50 / p99), backends side by side in one run: cached = "
        "newest frame only, naive = all 6 frames re-encoded (reference backend)"
    )
    table.add_column("model")
    table.add_column("backend")
    table.add_column("step")
    for stage in STAGES:
        table.add_column(stage.removesuffix("_ms"), justify="right")
    table.add_column(f"{REFERENCE_BACKEND} f32 p50 / this", justify="right")
    table.add_column("naive / cached", justify="right")
    for result in results:
        for label, description in result.backends.items():
            console.log(f"{result.name} {label}: {description}")
        rows = [(label, "cached", series) for label, series in result.cached.items()]
        rows.insert(1, (result.reference, "naive", result.naive))
        for label, step, series in rows:
            cells = [
                f"{series.percentile(stage, 50):.2f} / {series.percentile(stage, 99):.2f}"
                for stage in STAGES
            ]
            cached = step == "cached"
            ratio = f"{result.ratio_to_reference_p50(label):.2f}x" if cached else ""
            speedup = f"{result.speedup_p50:.2f}x" if label == result.reference and cached else ""
            table.add_row(result.name, label, step, *cells, ratio, speedup)
    Console(width=BENCH_WIDE).print(table)
    for name, agreement in agreements:
        Console(width=WIDE).print(_agreement_table(name, agreement))
    if args.json:
        figures = [result.to_dict() for result in results]
        for figure, (_, agreement) in zip(figures, agreements, strict=False):
            figure["agreement"] = agreement.to_dict()
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        console.print(f"wrote {args.json}")
    return 0


def _agreement_table(name: str, agreement: AgreementResult) -> Table:
    """Rows: action dimensions; columns: backends; cells: exact (within one bin) agreement."""
    import numpy as np

    table = Table(
        title=f"{name}: action-token (argmax) agreement with {agreement.reference} f32, "
        f"per dimension, over {agreement.windows} windows of real frames "
        f"({agreement.episodes} recorded episodes); in brackets: within one bin"
    )
    others = [label for label in agreement.matches if label != agreement.reference]
    table.add_column("action dimension")
    for label in others:
        table.add_column(label, justify="right")
    exact = np.stack([agreement.agreement(label) for label in others], axis=1)  # [dims, backends]
    near = np.stack([agreement.agreement_within_one_bin(label) for label in others], axis=1)
    for dimension, exact_row, near_row in zip(agreement.dimensions, exact, near, strict=True):
        cells = [f"{e:.1%} ({n:.1%})" for e, n in zip(exact_row, near_row, strict=True)]
        table.add_row(dimension, *cells)
    lowest = zip(exact.min(axis=0), near.min(axis=0), strict=True)
    table.add_row("[b]lowest[/b]", *(f"[b]{e:.1%} ({n:.1%})[/b]" for e, n in lowest))
    return table


def _node_inference_overrides(args: argparse.Namespace) -> list[str]:
    """The policy node's inference parameters from bench-node's options (none: policy.yaml's)."""
    overrides = []
    if args.providers:
        overrides.append(f"providers:=[{','.join(args.providers.split(','))}]")
    if args.precision:
        overrides.append(f"precision:={args.precision}")
    if args.threads is not None:
        overrides.append(f"intra_op_threads:={args.threads}")
    if args.executor:
        overrides.append(f"executor:={args.executor}")
    return overrides


def _cmd_bench_node(args: argparse.Namespace) -> int:
    from rt_ros.nodes.node_benchmark import run_node_benchmark

    targets = [(path.name, path) for path in args.model or []]
    if not targets:
        targets = [(preset, _bench_bundle_for(preset)) for preset in args.preset]
    profiles = [_dds_profile(value) for value in args.dds_profile]
    if args.soak:
        return _soak_node(args, targets[0][1], profiles[0])
    shape = (args.camera_height, args.camera_width, 3)
    results = []
    for name, path in targets:
        for profile in profiles:  # side by side: the same machine, one after the other
            console.log(
                f"{name}: policy node at {args.rate_hz:g} Hz for {args.duration_s:g} s "
                f"(+ warm-up), camera {args.camera_width}x{args.camera_height} rgb8 at "
                f"{args.camera_hz:g} Hz, Fast DDS profile {profile or 'none (defaults)'}"
            )
            results.append(
                run_node_benchmark(
                    name,
                    path,
                    args.rate_hz,
                    args.duration_s,
                    args.camera_hz,
                    shape,
                    profile,
                    _node_inference_overrides(args),
                )
            )
    table = Table(title="policy node, ms (p50 / p99)")
    for column in (
        "model",
        "DDS profile",
        "Hz target / got",
        "steps",
        "missed ticks",
        "policy step",
        "node overhead",
        "image-to-command",
        "stamp-to-arrival",
        "frames delivered",
        "frame interval (p50 / p99 / max)",
    ):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            r.name,
            r.dds_profile,
            f"{r.control_rate_hz:g} / {r.status.get('achieved_rate_hz', 'nan')}",
            str(r.steps),
            str(r.missed_ticks),
            f"{r.node_ms('policy_step', 50):.2f} / {r.node_ms('policy_step', 99):.2f}",
            f"{r.node_ms('node_overhead', 50):.2f} / {r.node_ms('node_overhead', 99):.2f}",
            f"{r.node_ms('image_to_command', 50):.2f} / {r.node_ms('image_to_command', 99):.2f}",
            f"{r.client_percentile(50):.2f} / {r.client_percentile(99):.2f}",
            f"{r.delivered:.1%} ({r.frames_received} of {r.frames_published})",
            f"{r.node_ms('frame_interval', 50):.1f} / {r.node_ms('frame_interval', 99):.1f} / "
            f"{r.longest_frame_gap_ms:.1f}",
        )
    Console(width=WIDE).print(table)
    return 0


def _dds_profile(value: str) -> Path | None:
    """`none`: Fast DDS's defaults; `shipped`: config/fastdds.xml; else a profile file."""
    from rt_ros.paths import config_dir

    if value == "none":
        return None
    path = config_dir() / "fastdds.xml" if value == "shipped" else Path(value)
    if not path.is_file():
        raise SystemExit(f"--dds-profile: {path} is not a file")
    return path


def _soak_node(args: argparse.Namespace, bundle: Path, profile: Path | None) -> int:
    from rt_ros.nodes.memory_soak import run_memory_soak

    console.log(
        f"memory soak: policy node at {args.rate_hz:g} Hz for {args.duration_s:g} s under the "
        f"fault mix, camera 640x480 rgb8 at {args.camera_hz:g} Hz"
    )
    result = run_memory_soak(
        bundle,
        args.rate_hz,
        args.duration_s,
        args.camera_hz,
        large_frames=not args.no_large_frames,
        dds_profile=profile,
        progress=console.log,
    )
    table = Table(title="policy node memory under hostile input (resident, MB)")
    for column in ("after start", "after 1 min", "end", "max", "growth after 1 min", "alive"):
        table.add_column(column, justify="right")
    samples = [mb for _, mb in result.rss_mb]
    table.add_row(
        f"{samples[0]:.1f}",
        f"{result.rss_at(60.0):.1f}",
        f"{samples[-1]:.1f}",
        f"{max(samples):.1f}",
        f"{result.growth_mb:+.1f}",
        "yes" if result.alive else "NO",
    )
    Console(width=WIDE).print(table)
    counters = {k: v for k, v in result.status.items() if "rejected" in k or k in SOAK_COUNTERS}
    console.print(", ".join(f"{k} {v}" for k, v in counters.items()))
    return 0 if result.alive else 1


SOAK_COUNTERS = ("frames_received", "steps", "stale_ticks", "missed_ticks", "achieved_rate_hz")


def _default_bundle() -> Path:
    """models/rt1-tiny of the package, exported from the shipped weights if missing or stale."""
    from rt_ros.model.shipped import ensure_default_bundle

    return ensure_default_bundle(progress=lambda message: console.log(f"rt1-tiny: {message}"))


def _add_camera_rig_argument(parser: argparse.ArgumentParser, default_help: str) -> None:
    from rt_ros.sim.camera_rig import CAMERA_RIGS

    parser.add_argument(
        "--camera-rig",
        choices=tuple(CAMERA_RIGS),
        help="the simulated robot's head camera (rt_ros/sim/camera_rig.py; a model sees only the "
        f"rig it learnt from): {', '.join(f'{r.name}: {r.summary}' for r in CAMERA_RIGS.values())}"
        f" (default: {default_help})",
    )


def _model_world(args: argparse.Namespace, model: Path):
    """A SimWorld on the camera rig asked for, else the one `model` was trained on."""
    from rt_ros.sim.camera_rig import rig_for_model, world_config
    from rt_ros.sim.world import SimWorld

    return SimWorld(world_config(rig_for_model(args.camera_rig, model)))


def _cmd_demo(args: argparse.Namespace) -> int:
    from rt_ros.nodes.sim_demo import DemoSettings, run_demo

    # With --remote the bundle runs on the server: none is exported or loaded here.
    local_bundle = args.model or (Path("models/rt1-tiny") if args.remote else _default_bundle())
    settings = DemoSettings(
        model_path=local_bundle.resolve(),
        task=args.task,
        seed=args.seed,
        split=args.split,
        instruction=args.instruction,
        max_steps=args.max_steps,
        control_rate_hz=args.control_rate_hz,
        out_dir=args.out,
        viewer=args.viewer,
        remote_url=args.remote,
        camera_rig=args.camera_rig,
    )
    with Progress(
        TextColumn("episode"), BarColumn(), MofNCompleteColumn(), TextColumn("policy steps"),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("episode", total=None)

        def on_step(steps: int, total: int) -> None:
            progress.update(task, completed=steps, total=total)

        summary = run_demo(settings, on_step)
    if summary.untrained_model:
        console.print(
            "[yellow]the model is UNTRAINED (seeded random weights): its actions carry no "
            "meaning, so the robot is not expected to succeed[/yellow]"
        )
    if summary.timing_problems:
        console.print(
            "[yellow]this machine did not keep the nodes' timing ("
            + "; ".join(summary.timing_problems)
            + "): the outcome says more about the machine's load than the model[/yellow]"
        )
    table = Table(title=f"rt-ros demo: {summary.instruction!r}", show_header=False)
    for key, value in (
        ("task / seed", f"{summary.task} / {summary.seed}"),
        ("camera rig", summary.camera_rig),
        ("success", "yes" if summary.success else "no"),
        ("policy steps", str(summary.steps)),
        ("ended by", "the policy (terminate)" if summary.terminated_by_policy else "step limit"),
        (
            "image-to-command p50 / p99",
            f"{summary.image_to_command_ms_p50:.1f} / {summary.image_to_command_ms_p99:.1f} ms",
        ),
        ("policy step p50", f"{summary.policy_step_ms_p50:.1f} ms"),
        ("video", f"{summary.video} ({summary.frames} frames)"),
        ("summary", str(args.out / "summary.json")),
    ):
        table.add_row(key, value)
    Console(width=WIDE).print(table)
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from rt_ros.sim.camera_rig import rig_for_model
    from rt_ros.train.collect import collect_demonstrations, missing_seeds

    kind = "counterfactual" if args.counterfactual else "DAgger" if args.policy else "expert"
    # DAgger: the driving model sees the rig it learnt from unless told otherwise.
    rig = rig_for_model(args.camera_rig, args.policy)
    console.print(f"camera rig {rig}")
    total = args.episodes
    if args.skip_existing:
        total = len(missing_seeds(args.out, args.task, args.seed_start, args.episodes))
        console.print(f"{args.episodes - total} of {args.episodes} episodes already in {args.out}")
    with Progress(
        TextColumn(f"collect {args.task} ({kind})"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        bar = progress.add_task("", total=total)
        successes = 0

        def on_episode(episode) -> None:
            nonlocal successes
            successes += episode.result.success
            last = episode.path.name if episode.path else f"seed {episode.result.seed}: none"
            progress.update(bar, advance=1, description=f"{successes} successful, last: {last}")

        try:
            collected = collect_demonstrations(
                args.task,
                args.episodes,
                args.out,
                args.seed_start,
                split=args.split,
                jobs=args.jobs,
                policy_path=args.policy,
                expert_mix=args.expert_mix,
                action_delay_s=tuple(args.action_delay_s),
                on_episode=on_episode,
                skip_existing=args.skip_existing,
                counterfactual=args.counterfactual,
                counterfactual_ticks=args.counterfactual_ticks,
                counterfactual_role=args.counterfactual_role,
                expert_approach_gain=args.expert_approach_gain,
                camera_rig=rig,
            )
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if args.counterfactual:
        files = [episode for episode in collected if episode.path is not None]
        console.print(
            f"wrote {sum(e.episodes for e in files)} counterfactual episodes in {len(files)} "
            f"files to {args.out} ({len(collected) - len(files)} seeds had no alternative "
            f"object; {sum(e.messages for e in files)} messages)"
        )
        return 0
    console.print(
        f"wrote {len(collected)} {kind} episodes to {args.out} "
        f"({successes}/{len(collected)} successful, "
        f"{sum(e.messages for e in collected)} messages)"
    )
    return 0


def _cmd_grounding(args: argparse.Namespace) -> int:
    from rt_ros.eval.grounding import measure_grounding
    from rt_ros.runtime.onnx_session import SessionConfig
    from rt_ros.runtime.policy import Policy

    if args.seeds < 1:
        raise ConfigError(f"--seeds ({args.seeds}) must be >= 1")
    families = args.families or (
        ["move_near"] if args.role == "anchor" else ["pick", "knock_over", "move_near"]
    )
    if args.role == "anchor" and families != ["move_near"]:
        raise ConfigError(f"--role anchor measures move_near only, not {', '.join(families)}")
    model = args.model or _default_bundle()
    policy = Policy.from_bundle(model, SessionConfig(providers=("cpu",)))
    world = _model_world(args, model)
    seeds = range(args.seed_start, args.seed_start + args.seeds)
    with Progress(
        TextColumn("grounding"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True,
    ) as progress:  # fmt: skip
        bar = progress.add_task("", total=len(families) * args.seeds)
        results = measure_grounding(
            policy, world, families, seeds, args.split, args.role,
            on_layout=lambda family, seed: progress.update(
                bar, advance=1, description=f"{family} seed {seed}"
            ),
        )  # fmt: skip
    world.close()
    moment = "first action" if args.role == "target" else "first carrying action"
    table = Table(title=f"{moment} on the {args.role} named ({args.split}, seeds {seeds.start}-"
                        f"{seeds.stop - 1})")  # fmt: skip
    for column in ("family", "layouts", "pairs", "choice (chance 50%)", "95% CI",
                   "shift: expert / policy (bins)"):  # fmt: skip
        table.add_column(column)
    rows = [result.to_dict() for result in results]
    for row in rows:
        low, high = row["choice_ci95"]
        table.add_row(
            row["family"], str(row["layouts"]), str(row["pairs"]), f"{row['choice']:.0%}",
            f"{low:.0%}-{high:.0%}",
            f"{row['expert_shift_bins']:.2f} / {row['policy_shift_bins']:.2f}",
        )  # fmt: skip
    console.print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "model": str(args.model or "shipped"), "split": args.split, "role": args.role,
            "rows": rows,
        }  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


def _cmd_grasp_precision(args: argparse.Namespace) -> int:
    from rt_ros.eval.bundle_policy import BundlePolicy
    from rt_ros.eval.grasp_precision import (
        ON_TARGET_M,
        measure_grasp_precision,
        plot_first_attempts,
        summarise,
    )
    from rt_ros.runtime.onnx_session import SessionConfig
    from rt_ros.runtime.policy import Policy
    from rt_ros.sim.expert import ExpertConfig, ScriptedExpert

    if args.episodes < 1:
        raise ConfigError(f"--episodes ({args.episodes}) must be >= 1")
    try:
        expert = ScriptedExpert(config=ExpertConfig(approach_gain=args.expert_approach_gain))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    model = args.model or _default_bundle()
    runtime = Policy.from_bundle(model, SessionConfig(providers=("cpu",)))
    policy = BundlePolicy(runtime)
    world = _model_world(args, model)
    seeds = range(args.seed_start, args.seed_start + args.episodes)
    runs = [("policy", policy)] + ([] if args.no_expert else [("expert", expert)])
    measured = {}
    with Progress(
        TextColumn("grasp precision"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True,
    ) as progress:  # fmt: skip
        bar = progress.add_task("", total=len(runs) * len(args.families) * args.episodes)
        for name, driver in runs:
            measured[name] = measure_grasp_precision(
                world, driver, args.families, seeds, args.split,
                on_episode=lambda episode, name=name: progress.update(
                    bar, advance=1, description=f"{name} {episode.family} seed {episode.seed}"
                ),
            )  # fmt: skip
    motion = _target_image_motion(world, args.families, seeds, args.split, runtime.image_size_px)
    world.close()
    table = Table(
        title=f"first grasp attempt of {model} ({args.split}, seeds {seeds.start}-"
        f"{seeds.stop - 1}; offsets from the expert's grasp point)"
    )
    for column in ("family", "who", "episodes", "success", "no close", "other object",
                   f"within {ON_TARGET_M * 100:.0f} cm (95% CI)", "drifted off",
                   "miss p25/p50/p75 cm",
                   "mean fwd/lat cm", "attempts", "same-side retries"):  # fmt: skip
        table.add_column(column)
    rows = []
    for name, episodes in measured.items():
        for summary in summarise(episodes):
            row = {"who": name, **summary.to_dict()}
            rows.append(row)
            low, high = summary.on_target_ci95
            p25, p50, p75 = summary.first_horizontal_cm
            table.add_row(
                summary.family, name, str(summary.episodes), str(summary.successes),
                str(summary.never_closed), str(summary.on_other_object),
                f"{summary.on_target} ({low:.0%}-{high:.0%})", str(summary.drifted_off),
                f"{p25:.1f}/{p50:.1f}/{p75:.1f}",
                f"{summary.first_forward_cm_mean:+.1f}/{summary.first_lateral_cm_mean:+.1f}",
                f"{summary.attempts_mean:.1f}",
                f"{summary.retried_same_side} of {summary.retried}",
            )  # fmt: skip
    console.print(table)
    height_px, width_px = runtime.image_size_px
    console.print(
        f"the head camera at the model's {width_px}x{height_px} px input, at the targets "
        f"(median): 1 cm forward moves the image {motion.forward_px_per_cm:.2f} px, sideways "
        f"{motion.lateral_px_per_cm:.2f} px, up {motion.up_px_per_cm:.2f} px; forward and up "
        f"{motion.forward_up_angle_deg:.0f} degrees apart; the line of sight "
        f"{motion.line_of_sight_elevation_deg:.0f} degrees below horizontal"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": str(model), "split": args.split, "seeds": [seeds.start, seeds.stop - 1],
        "summary": rows,
        "image_motion_at_targets": {
            "input_size_px": [height_px, width_px], "median": motion.to_dict(),
        },
        "episodes": {name: [e.to_dict() for e in episodes] for name, episodes in measured.items()},
    }  # fmt: skip
    (args.out / "grasp_precision.json").write_text(
        json.dumps(payload, indent=2) + "\n", encoding="utf-8"
    )
    plot_first_attempts(
        measured["policy"], measured.get("expert", []), args.out / "grasp_offsets.png",
        f"{Path(model).name}, {args.split} seeds {seeds.start}-{seeds.stop - 1}",
    )  # fmt: skip
    console.print(
        f"wrote {args.out / 'grasp_precision.json'} and {args.out / 'grasp_offsets.png'}"
    )
    return 0


def _target_image_motion(
    world: SimWorld,
    families: Sequence[str],
    seeds: Sequence[int],
    split: str,
    input_size_px: tuple[int, int],
) -> ImageMotion:
    """Median image motion per cm (rt_ros.sim.image_motion) at the targets of the layouts."""
    from rt_ros.sim.image_motion import image_motion_per_cm, median_image_motion
    from rt_ros.sim.tasks import get_task

    motions = []
    for family in families:
        for seed in seeds:
            task = world.reset(seed, get_task(family), split)
            point = world.object_position(task.target)
            motions.append(image_motion_per_cm(world, point, input_size_px))
    return median_image_motion(motions)


def _passive_openmp_waits() -> None:
    """Before torch loads: OpenMP threads that wait by sleeping, not spinning. Training shares
    two cores with simulators and DDS; a spinning thread whose partner was descheduled halved
    the step rate (`rt-ros train-bench` under one competing process: 76 vs 37 ms per window)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _cmd_train(args: argparse.Namespace) -> int:
    _passive_openmp_waits()
    from rt_ros.train.augment import AugmentConfig
    from rt_ros.train.train_config import TrainConfig
    from rt_ros.train.trainer import train

    try:
        config = TrainConfig(
            data=tuple(args.data),
            out_dir=args.out,
            preset=args.preset,
            action_space=args.action_space,
            topic_map=args.topic_map,
            store_dir=args.store,
            val_fraction=args.val_fraction,
            include_failed_demonstrations=args.include_failed,
            epochs=args.epochs,
            max_steps=args.max_steps,
            chunks_per_batch=args.chunks_per_batch,
            windows_per_chunk=args.windows_per_chunk,
            learning_rate=args.lr,
            film_lr_multiplier=args.film_lr_multiplier,
            keyframe_weight=args.keyframe_weight,
            keyframe_min_change_bins=args.keyframe_min_change_bins,
            warmup_steps=args.warmup_steps,
            weight_decay=args.weight_decay,
            precision=args.precision,
            augment=None if args.no_augment else AugmentConfig(),
            val_every_steps=args.val_every,
            checkpoint_every_steps=args.checkpoint_every,
            seed=args.seed,
            init_checkpoint=args.init,
            threads=args.threads,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    rank = int(os.environ.get("RANK", "0"))
    with Progress(
        TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=rank != 0,
    ) as progress:  # fmt: skip
        bar = progress.add_task("starting", total=None)
        shown: dict = {}

        def on_progress(step: int, total: int, row: dict) -> None:
            shown.update({k: v for k, v in row.items() if k in ("loss", "token_accuracy")})
            shown.update({k: v for k, v in row.items() if k in ("val_loss", "val_acc")})
            text = "  ".join(
                f"{key} {value:.3f}" for key, value in shown.items() if isinstance(value, float)
            )
            progress.update(bar, completed=step, total=total, description=text)
            if "val_loss" in row:
                console.log(f"step {step}: validation loss {row['val_loss']:.4f}, "
                            f"token accuracy {row['val_acc']:.4f}")  # fmt: skip

        summary = train(config, resume=args.resume, progress=on_progress, say=console.log)
    if rank == 0:
        console.print(
            f"[green]wrote {args.out / 'model.pt'}[/green] ({summary['training']['steps']} steps "
            f"in {summary['training']['wall_s']:.0f} s); curves: {args.out / 'curves.png'}"
        )
    return 0


def _cmd_train_bench(args: argparse.Namespace) -> int:
    _passive_openmp_waits()
    import numpy as np
    import torch

    from rt_ros.train.train_benchmark import run_train_benchmark
    from rt_ros.train.training_store import TrainingStore

    if args.threads:
        torch.set_num_threads(args.threads)
    store = TrainingStore(args.store)
    with Progress(
        TextColumn("train-bench"), BarColumn(), MofNCompleteColumn(), console=console,
        transient=True,
    ) as progress:  # fmt: skip
        bar = progress.add_task("", total=args.steps + 2)
        results = run_train_benchmark(
            store, args.preset, args.steps, on_step=lambda: progress.advance(bar)
        )
    table = Table(
        title=f"training step cost, {args.preset}, {torch.get_num_threads()} threads "
        "(median of interleaved steps)"
    )
    for column in ("variant", "frames / step", "windows / step", "ms / encoded frame",
                   "ms / window", "vs shared fp32"):  # fmt: skip
        table.add_column(column, justify="right")
    base = results[0].ms_per_window
    for result in results:
        table.add_row(
            result.variant.name,
            f"{np.median(result.frames):.0f}",
            f"{np.median(result.windows):.0f}",
            f"{result.ms_per_frame:.2f}",
            f"{result.ms_per_window:.2f}",
            f"{result.ms_per_window / base:.2f}x",
        )
    Console(width=WIDE).print(table)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from rt_ros.eval.closed_loop import EvalSettings, evaluate
    from rt_ros.eval.report import markdown_table, timing_note, write_report

    try:
        settings = EvalSettings(
            model_path=args.model or _default_bundle(),
            out_dir=args.out,
            families=tuple(args.families),
            splits=tuple(args.splits),
            episodes=args.episodes,
            unseen_episodes=args.unseen_episodes,
            seed_start=args.seed_start,
            jobs=args.jobs,
            through="direct" if args.direct else "nodes",
            control_rate_hz=args.control_rate_hz,
            action_delay_s=tuple(args.action_delay_s),
            driver_limits=args.driver_limits,
            with_expert=not args.no_expert,
            failure_videos=args.failure_videos,
            camera_rig=args.camera_rig,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    from rt_ros.sim.camera_rig import rig_for_model

    rig = rig_for_model(settings.camera_rig, settings.model_path)
    console.print(f"camera rig {rig}")
    total = sum(settings.episodes_for(split) for split in settings.splits) * len(settings.families)
    tally: dict[str, list[int]] = {}
    with Progress(
        TextColumn(f"eval ({settings.through})"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.description}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console,
    ) as progress:  # fmt: skip
        bar = progress.add_task("", total=total)

        def on_episode(result) -> None:
            counts = tally.setdefault(f"{result.family}/{result.split}", [0, 0])
            counts[0] += result.success
            counts[1] += 1
            progress.update(
                bar,
                advance=1,
                description=f"{result.family} {result.split} seed {result.seed}: "
                f"{'success' if result.success else 'failure'} "
                f"({counts[0]}/{counts[1]} in its row)",
            )

        results = evaluate(settings, on_episode)
    title = (
        f"rt-ros eval: {Path(settings.model_path).name}, through {settings.through}, "
        f"camera rig {rig}"
    )
    if settings.driver_limits:
        title += ", behind the driver's safety layer"
    rows = write_report(results, settings.out_dir, title)
    console.print(markdown_table(rows))
    note = timing_note(rows)
    if note:
        console.print(f"[yellow]{note}[/yellow]")
    console.print(
        f"wrote {settings.out_dir}/summary.md, summary.csv, episodes.csv, success.png "
        f"and failure videos under {settings.out_dir}/failures"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rt-ros", description="Robotics Transformer policies for ROS 2."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = parser.add_subparsers(dest="command", required=True)

    export = commands.add_parser(
        "export", help="export an RT-1 model to a bundle (frame_encoder.onnx, policy.onnx, ...)"
    )
    export.add_argument("--preset", choices=PRESET_CHOICES, default="rt1-tiny")
    export.add_argument("--checkpoint", type=Path, help="training checkpoint (default: random)")
    export.add_argument(
        "--store",
        type=Path,
        help="training store whose held-out episodes check the export (default: the "
        "checkpoint's own, if present)",
    )
    export.add_argument("--out", type=Path, help="bundle folder to write")
    export.add_argument(
        "--shipped",
        action="store_true",
        help="export the shipped trained rt1-tiny weights (models/rt1-tiny.pt) to the default "
        "bundle models/rt1-tiny (or --out), unless it is already up to date",
    )
    export.add_argument("--seed", type=int, default=0, help="seed of the random initialisation")
    export.add_argument(
        "--action-space", default="rt1_everyday_robots", help="profile name or YAML path"
    )
    export.set_defaults(func=_cmd_export)

    precompute = commands.add_parser(
        "precompute-instructions",
        help="copy a bundle with a fixed instruction set embedded ahead (no sentence encoder)",
    )
    precompute.add_argument("--model", type=Path, required=True, help="source bundle folder")
    precompute.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    precompute.add_argument("--instructions", nargs="+", help="instructions, each one argument")
    precompute.add_argument(
        "--instructions-file", type=Path, help="a text file, one instruction per line (# comments)"
    )
    precompute.add_argument(
        "--recordings", type=Path, nargs="+", help="MCAP recordings whose instructions to add"
    )
    precompute.add_argument(
        "--bench-instruction",
        action="store_true",
        help="add the instruction `rt-ros bench` times with",
    )
    precompute.set_defaults(func=_cmd_precompute)

    bench = commands.add_parser(
        "bench", help="cached vs naive step latency per stage, side by side"
    )
    bench.add_argument(
        "--preset",
        nargs="+",
        choices=PRESET_CHOICES,
        default=["rt1-tiny", "rt1"],
        help="presets to bench with seeded random weights (exported once into the cache)",
    )
    bench.add_argument("--model", type=Path, nargs="+", help="bundle folders (instead of presets)")
    bench.add_argument(
        "--backends",
        nargs="+",
        help="what to time side by side, each providers[:precision[:graph optimization]], e.g. "
        "cpu openvino:bf16 cuda,cpu cpu:f32:disable (providers: auto, tensorrt, cuda, openvino, "
        "cpu; precision: f32, tf32 (cuda), f16 (cuda), bf16 (openvino); ONNX Runtime graph "
        "optimization: disable, basic, extended, all; cpu:f32:disable beside cpu shows how far "
        "float rounding alone moves the tokens). "
        "ONNX Runtime cpu f32 always runs first: the reference of every ratio and agreement. "
        "Default: cpu, and openvino:f32 openvino:bf16 where openvino is installed",
    )
    bench.add_argument(
        "--threads", type=int, default=0, help="threads per graph, every backend (0: default)"
    )
    bench.add_argument("--cuda-graph", action="store_true", help="capture CUDA graphs")
    bench.add_argument(
        "--spin-wait",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="let ONNX Runtime's threads spin after a run (its default; off here: in one process "
        "beside other backends, or on a busy machine, the spinning slows everything else)",
    )
    bench.add_argument("--steps", type=int, default=60, help="timed steps per model")
    bench.add_argument(
        "--agreement-windows",
        type=int,
        default=300,
        help="full 6-frame windows of recorded frames on which each backend's action tokens are "
        "compared with the reference's (0: none)",
    )
    bench.add_argument(
        "--recordings",
        type=Path,
        nargs="+",
        help="MCAP recordings or folders of them for the agreement check (default: data/expert "
        "where it exists)",
    )
    bench.add_argument("--json", type=Path, help="also write the figures as JSON here")
    bench.set_defaults(func=_cmd_bench)

    bench_node = commands.add_parser(
        "bench-node",
        help="image-to-command latency and rate through a policy-node process over DDS",
    )
    bench_node.add_argument("--preset", nargs="+", choices=PRESET_CHOICES, default=["rt1-tiny"])
    bench_node.add_argument("--model", type=Path, nargs="+", help="bundle folders")
    bench_node.add_argument("--rate-hz", type=float, default=20.0, help="control_rate_hz")
    bench_node.add_argument("--duration-s", type=float, default=120.0, help="measured time")
    bench_node.add_argument("--camera-hz", type=float, default=30.0, help="camera frame rate")
    bench_node.add_argument("--camera-width", type=int, default=640, help="camera frame width")
    bench_node.add_argument("--camera-height", type=int, default=480, help="camera frame height")
    bench_node.add_argument(
        "--providers", help="the node's providers, comma-separated (default: config/policy.yaml)"
    )
    bench_node.add_argument(
        "--precision",
        choices=("f32", "tf32", "f16", "bf16"),
        help="the node's precision (tf32: cuda; f16: cuda, tensorrt; bf16: openvino)",
    )
    bench_node.add_argument("--threads", type=int, help="the node's threads per graph")
    bench_node.add_argument(
        "--executor", choices=("multi_threaded", "events"), help="the node's executor"
    )
    bench_node.add_argument(
        "--dds-profile",
        nargs="+",
        default=["shipped"],
        help="Fast DDS profile of the camera and node processes, one run each: shipped "
        "(config/fastdds.xml), none (Fast DDS defaults) or a file; e.g. none shipped",
    )
    bench_node.add_argument(
        "--soak",
        action="store_true",
        help="instead: the node's memory over --duration-s of the fault mix (hostile frames "
        "and instructions) beside a normal camera",
    )
    bench_node.add_argument(
        "--no-large-frames",
        action="store_true",
        help="--soak without the 7680x4320 frame sent once a minute",
    )
    bench_node.set_defaults(func=_cmd_bench_node)

    demo = commands.add_parser(
        "demo", help="the simulated robot follows an instruction with a model bundle"
    )
    demo.add_argument(
        "--model", type=Path, help="bundle folder (default: models/rt1-tiny, the trained model)"
    )
    demo.add_argument(
        "--task",
        default="pick",
        choices=FAMILY_CHOICES,
        help="task family laid out in the kitchen",
    )
    demo.add_argument("--seed", type=int, default=0, help="layout seed")
    demo.add_argument(
        "--split",
        default="any",
        choices=("any", "seen", "unseen_paraphrase", "unseen_combination"),
        help="layouts and wordings the seed draws from",
    )
    demo.add_argument("--instruction", help="what to tell the robot (default: the task's own)")
    demo.add_argument("--max-steps", type=int, help="policy steps (default: the task's budget)")
    demo.add_argument("--control-rate-hz", type=float, default=3.0, help="policy rate")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    demo.add_argument("--viewer", action="store_true", help="open MuJoCo's viewer (a display)")
    demo.add_argument(
        "--remote",
        metavar="URL",
        help="the policy node asks this policy server (rt-ros serve) instead of running the model",
    )
    _add_camera_rig_argument(demo, "the model's, from its manifest")
    demo.set_defaults(func=_cmd_demo)

    collect = commands.add_parser(
        "collect", help="scripted-expert demonstrations as rosbag2-compatible MCAP files"
    )
    collect.add_argument(
        "--task",
        required=True,
        choices=FAMILY_CHOICES,
        help="task family",
    )
    collect.add_argument("--episodes", type=int, default=10, help="episodes (one file each)")
    collect.add_argument("--out", type=Path, required=True, help="folder for the .mcap files")
    collect.add_argument("--seed-start", type=int, default=0, help="first layout seed")
    collect.add_argument(
        "--split",
        default="seen",
        choices=("any", "seen", "unseen_paraphrase", "unseen_combination"),
        help="layouts and wordings to draw (seen: what training may use; the unseen ones are "
        "held out for evaluation)",
    )
    collect.add_argument("--jobs", type=int, default=1, help="episodes recorded in parallel")
    collect.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep the episodes already recorded in --out and record only the missing seeds "
        "(an interrupted collection resumes)",
    )
    collect.add_argument(
        "--policy",
        type=Path,
        help="DAgger: this bundle drives and the scripted expert labels the states it visits",
    )
    collect.add_argument(
        "--counterfactual",
        action="store_true",
        help="pick, knock_over, move_near: per seed, the expert's labels over its approach for "
        "every other object the instruction could have named (same frames, re-worded "
        "instruction)",
    )
    collect.add_argument(
        "--counterfactual-ticks",
        type=int,
        metavar="N",
        help="with --counterfactual: label only the first N ticks of the window and end there "
        "(thousands of layouts cheaply); each bag then holds the named object's own episode too",
    )
    collect.add_argument(
        "--counterfactual-role",
        choices=("target", "anchor"),
        default="target",
        help="with --counterfactual: rename the object acted on (target), or, for move_near, the "
        "one it is put by (anchor: labels over the carry, after the 5 ticks before it)",
    )
    collect.add_argument(
        "--expert-mix",
        type=float,
        default=0.0,
        help="DAgger: probability that a tick executes the expert's action instead",
    )
    collect.add_argument(
        "--action-delay-s",
        type=float,
        nargs=2,
        default=(0.0, 0.0),
        metavar=("LOW", "HIGH"),
        help="each action takes effect a delay drawn from [LOW, HIGH] s after its frame, as "
        "through the nodes (e.g. 0.05 0.15)",
    )
    collect.add_argument(
        "--expert-approach-gain",
        type=float,
        default=1.0,
        metavar="G",
        help="the scripted expert translates G of the distance left each tick, up to its step "
        "limit (1: deadbeat, the last step is what is left; 0.5: geometric, halving it)",
    )
    _add_camera_rig_argument(collect, "with --policy, that model's; else head_v1")
    collect.set_defaults(func=_cmd_collect)

    train_cmd = commands.add_parser(
        "train", help="train RT-1 on recorded episodes (rosbag2 MCAP); torchrun for DDP"
    )
    train_cmd.add_argument(
        "--data",
        type=Path,
        nargs="+",
        default=(),
        help="recordings (without: train on --store exactly as it was built)",
    )
    train_cmd.add_argument("--preset", choices=PRESET_CHOICES, default="rt1-tiny")
    train_cmd.add_argument("--out", type=Path, required=True, help="run folder")
    train_cmd.add_argument("--action-space", default="rt1_everyday_robots")
    train_cmd.add_argument(
        "--topic-map", default="rt_ros_collect", help="topic map name or YAML path"
    )
    train_cmd.add_argument("--store", type=Path, help="training store (default: OUT/store)")
    train_cmd.add_argument("--val-fraction", type=float, default=0.05)
    train_cmd.add_argument(
        "--include-failed", action="store_true", help="also train on failed demonstrations"
    )
    train_cmd.add_argument("--epochs", type=float, default=20.0)
    train_cmd.add_argument("--max-steps", type=int, help="stop after this many steps instead")
    train_cmd.add_argument("--chunks-per-batch", type=int, default=3)
    train_cmd.add_argument("--windows-per-chunk", type=int, default=12)
    train_cmd.add_argument("--lr", type=float, default=5e-4, help="peak learning rate")
    train_cmd.add_argument(
        "--film-lr-multiplier",
        type=float,
        default=1.0,
        help="the FiLM (instruction conditioning) layers' learning rate is this times --lr",
    )
    train_cmd.add_argument(
        "--keyframe-weight",
        type=float,
        default=1.0,
        help="loss weight of the ticks where the demonstrated action changes (arm translation, "
        "gripper or mode; 1: RT-1's loss)",
    )
    train_cmd.add_argument(
        "--keyframe-min-change-bins",
        type=int,
        default=2,
        help="with --keyframe-weight: the change, in bins, that makes a tick a keyframe",
    )
    train_cmd.add_argument("--warmup-steps", type=int, default=300)
    train_cmd.add_argument("--weight-decay", type=float, default=0.01)
    train_cmd.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    train_cmd.add_argument("--no-augment", action="store_true", help="no shift / colour jitter")
    train_cmd.add_argument("--val-every", type=int, default=500, help="steps between validations")
    train_cmd.add_argument("--checkpoint-every", type=int, default=500)
    train_cmd.add_argument("--seed", type=int, default=0)
    train_cmd.add_argument("--init", type=Path, help="start from these weights (fine-tuning)")
    train_cmd.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt")
    train_cmd.add_argument("--threads", type=int, default=0, help="torch threads (0: all)")
    train_cmd.set_defaults(func=_cmd_train)

    train_bench = commands.add_parser(
        "train-bench", help="training step cost: shared vs naive windows, fp32 vs bf16"
    )
    train_bench.add_argument("--store", type=Path, required=True, help="a training store")
    train_bench.add_argument("--preset", choices=PRESET_CHOICES, default="rt1-tiny")
    train_bench.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    train_bench.add_argument("--threads", type=int, default=0, help="torch threads (0: all)")
    train_bench.set_defaults(func=_cmd_train_bench)

    eval_cmd = commands.add_parser(
        "eval", help="closed-loop success of a bundle through the nodes, per family and split"
    )
    eval_cmd.add_argument("--model", type=Path, help="bundle folder (default: models/rt1-tiny)")
    eval_cmd.add_argument(
        "--families",
        nargs="+",
        default=list(FAMILY_CHOICES),
        choices=FAMILY_CHOICES,
        help="task families",
    )
    eval_cmd.add_argument(
        "--splits",
        nargs="+",
        default=["seen", "unseen_paraphrase", "unseen_combination"],
        choices=("any", "seen", "unseen_paraphrase", "unseen_combination"),
        help="seen layouts and wordings, or the held-out paraphrases / combinations",
    )
    eval_cmd.add_argument("--episodes", type=int, default=100, help="per family, split seen")
    eval_cmd.add_argument(
        "--unseen-episodes", type=int, help="per family and held-out split (default: --episodes)"
    )
    eval_cmd.add_argument(
        "--seed-start", type=int, default=100_000, help="first seed (training uses low seeds)"
    )
    eval_cmd.add_argument("--jobs", type=int, default=1, help="episodes in parallel")
    eval_cmd.add_argument(
        "--direct",
        action="store_true",
        help="run the runtime without ROS on fixed physics steps (quick checks, not the figure)",
    )
    eval_cmd.add_argument("--control-rate-hz", type=float, default=3.0)
    eval_cmd.add_argument(
        "--action-delay-s",
        type=float,
        nargs=2,
        default=(0.0, 0.0),
        metavar=("LOW", "HIGH"),
        help="--direct: each action takes effect a delay drawn from [LOW, HIGH] s after its frame",
    )
    eval_cmd.add_argument(
        "--driver-limits",
        action="store_true",
        help="--direct: actions reach the robot through the sim driver's safety layer "
        "(config/driver.yaml + sim.yaml limits at its update rate), as through the nodes",
    )
    eval_cmd.add_argument("--no-expert", action="store_true", help="skip the scripted expert")
    eval_cmd.add_argument("--failure-videos", type=int, default=5, help="kept per row")
    eval_cmd.add_argument("--out", type=Path, default=Path("runs/eval"), help="output folder")
    _add_camera_rig_argument(eval_cmd, "the model's, from its manifest")
    eval_cmd.set_defaults(func=_cmd_eval)

    grounding = commands.add_parser(
        "grounding",
        help="does the policy go for the object the instruction names? (first action; with "
        "--role anchor, move_near's first carrying action; no ROS)",
    )
    grounding.add_argument("--model", type=Path, help="bundle (default: the shipped rt1-tiny)")
    grounding.add_argument(
        "--families",
        nargs="+",
        choices=("pick", "knock_over", "move_near"),
        help="families measured (default: pick, knock_over, move_near; with --role anchor, "
        "move_near)",
    )
    grounding.add_argument("--seeds", type=int, default=50, help="layouts per family")
    grounding.add_argument(
        "--role",
        choices=("target", "anchor"),
        default="target",
        help="the object renamed: the one acted on (first action), or the one move_near puts "
        "it by (the first action while carrying; families default to move_near)",
    )
    grounding.add_argument(
        "--seed-start", type=int, default=100_000, help="first seed (training used < 100000)"
    )
    grounding.add_argument(
        "--split", default="seen", choices=("seen", "unseen_paraphrase", "unseen_combination")
    )
    grounding.add_argument("--json", type=Path, help="also write the figures here")
    _add_camera_rig_argument(grounding, "the model's, from its manifest")
    grounding.set_defaults(func=_cmd_grounding)

    grasp = commands.add_parser(
        "grasp-precision",
        help="where the gripper is when the policy closes it: each grasp attempt's miss "
        "distance from the expert's grasp point (pick, move_near; no ROS)",
    )
    grasp.add_argument("--model", type=Path, help="bundle (default: the shipped rt1-tiny)")
    grasp.add_argument(
        "--families", nargs="+", choices=("pick", "move_near"), default=["pick", "move_near"]
    )
    grasp.add_argument("--episodes", type=int, default=20, help="per family")
    grasp.add_argument(
        "--seed-start", type=int, default=100_100, help="first seed (training used < 100000)"
    )
    grasp.add_argument(
        "--split", default="seen", choices=("seen", "unseen_paraphrase", "unseen_combination")
    )
    grasp.add_argument("--no-expert", action="store_true", help="skip the scripted expert")
    grasp.add_argument(
        "--expert-approach-gain",
        type=float,
        default=1.0,
        metavar="G",
        help="the scripted expert's fraction of the distance left per tick (as rt-ros collect)",
    )
    grasp.add_argument(
        "--out", type=Path, default=Path("runs/grasp_precision"), help="output folder"
    )
    _add_camera_rig_argument(grasp, "the model's, from its manifest")
    grasp.set_defaults(func=_cmd_grasp_precision)

    # Simulator tools (their modules import only argparse and rich until they run).
    from rt_ros.sim.bench import add_subcommands as add_sim_bench
    from rt_ros.sim.expert_eval import add_subcommands as add_expert_eval

    add_expert_eval(commands)
    add_sim_bench(commands)
    # The policy server (its module imports only argparse until a command runs).
    from rt_ros.serve.cli import add_subcommands as add_serve

    add_serve(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    try:
        return args.func(args)
    except RtRosError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
