"""`rt-ros serve` (the policy server) and `rt-ros bench-serve` (simulated robots against it).

Only argparse is imported at module level; the web stack loads when a command runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

TOKEN_ENV = "RT_ROS_SERVE_TOKEN"
DEFAULT_MODEL = Path("models") / "rt1-tiny"


def _model_dir(path: Path | None) -> Path:
    from rt_ros.paths import share_dir

    return path if path is not None else share_dir() / DEFAULT_MODEL


def _cmd_serve(args: argparse.Namespace) -> int:
    from rt_ros.runtime.onnx_session import SessionConfig
    from rt_ros.serve.config import ServeConfig
    from rt_ros.serve.server import run_server

    config = ServeConfig(
        host=args.host,
        port=args.port,
        token=os.environ.get(TOKEN_ENV, "") if args.token is None else args.token,
        insecure=args.insecure,
        max_batch_size=1 if args.no_batching else args.max_batch_size,
        max_wait_ms=0.0 if args.no_batching else args.max_wait_ms,
        max_request_bytes=args.max_request_bytes,
        inject_delay_ms=args.inject_delay_ms,
    )
    session = SessionConfig(
        providers=tuple(args.providers), intra_op_threads=args.intra_op_threads
    )
    if args.ray:
        from rt_ros.serve.ray_deployment import run_on_ray

        run_on_ray(
            _model_dir(args.model),
            config,
            session,
            num_replicas=args.replicas,
            num_cpus_per_replica=args.replica_cpus,
            num_gpus_per_replica=args.replica_gpus,
        )
        return 0
    run_server(_model_dir(args.model), config, session, args.log_level)
    return 0


def _cmd_bench_serve(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from rt_ros.serve.benchmark import run_benchmark

    results = run_benchmark(
        _model_dir(args.model),
        robots=args.robots,
        rate_hz=args.rate_hz,
        duration_s=args.duration_s,
        deadline_s=args.deadline_ms / 1e3 if args.deadline_ms else None,
        closed_loop_s=args.closed_loop_s,
        rounds=args.rounds,
        extra_server_args=[
            "--providers",
            *args.providers,
            "--intra-op-threads",
            str(args.intra_op_threads),
        ],
    )
    first = results[0]
    table = Table(
        title=(
            f"rt-ros bench-serve: {first.robots} robots at {first.rate_hz:g} Hz for "
            f"{first.duration_s:g} s per setting in {args.rounds} alternating rounds, deadline "
            f"{first.deadline_ms:.0f} ms"
        )
    )
    for column in (
        "server", "steps", "deadline misses (no request)", "end-to-end p50 / p99 ms",
        "server p50 / p99 ms", "mean batch", "closed-loop steps/s", "vs one at a time",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    baseline = results[-1].closed_loop_steps_per_s
    for result in results:
        table.add_row(
            result.setting,
            str(result.steps),
            f"{result.misses} ({result.skipped})",
            f"{result.end_to_end_ms_p50:.1f} / {result.end_to_end_ms_p99:.1f}",
            f"{result.server_ms_p50:.1f} / {result.server_ms_p99:.1f}",
            f"{result.mean_batch_size:.2f}",
            f"{result.closed_loop_steps_per_s:.1f}",
            f"{result.closed_loop_steps_per_s / baseline:.2f}x",
        )
    Console(width=160).print(table)
    if args.json:
        args.json.write_text(json.dumps([asdict(result) for result in results], indent=2))
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add `serve` and `bench-serve` to the `rt-ros` command's subparsers."""
    from rt_ros.serve.config import DEFAULT_HOST, DEFAULT_PORT, ServeConfig

    defaults = ServeConfig()
    serve = subparsers.add_parser(
        "serve",
        help="serve a model bundle over HTTP (rt_ros step API, OpenVLA /act, metrics)",
        description=(
            "Robots step through POST /v1/step keeping their own token window (any replica "
            "answers any step); OpenVLA clients use POST /act. OpenAPI at /docs and "
            "/openapi.json, Prometheus metrics at /metrics, liveness at /healthz."
        ),
    )
    serve.add_argument("--model", type=Path, help="bundle folder (default: models/rt1-tiny)")
    serve.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on; beyond loopback a token (or --insecure) is required",
    )
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port")
    serve.add_argument(
        "--token",
        help=f"bearer token every request but /healthz must carry (default: ${TOKEN_ENV})",
    )
    serve.add_argument(
        "--insecure", action="store_true", help="listen beyond loopback without a token"
    )
    serve.add_argument(
        "--providers",
        nargs="+",
        default=["auto"],
        help="inference providers in order: auto, tensorrt, cuda, openvino, cpu",
    )
    serve.add_argument("--intra-op-threads", type=int, default=0, help="0: one per core")
    serve.add_argument(
        "--spin-wait",
        action="store_true",
        help="ONNX Runtime threads spin between steps (lower latency, a busy core each)",
    )
    serve.add_argument(
        "--max-batch-size", type=int, default=defaults.max_batch_size, help="steps per batch"
    )
    serve.add_argument(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help="how long a batch's first step waits for others",
    )
    serve.add_argument("--no-batching", action="store_true", help="one step at a time, no waiting")
    serve.add_argument(
        "--max-request-bytes",
        type=int,
        default=defaults.max_request_bytes,
        help="larger request bodies get 413",
    )
    serve.add_argument(
        "--inject-delay-ms",
        type=float,
        default=0.0,
        help="fault injection: answer every step this much later (tests, benchmarks)",
    )
    serve.add_argument(
        "--ray",
        action="store_true",
        help="deploy on Ray Serve (a local Ray instance, or the cluster at RAY_ADDRESS)",
    )
    serve.add_argument("--replicas", type=int, default=2, help="--ray: replicas of the app")
    serve.add_argument("--replica-cpus", type=float, default=1.0, help="--ray: CPUs per replica")
    serve.add_argument("--replica-gpus", type=float, default=0.0, help="--ray: GPUs per replica")
    serve.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    serve.set_defaults(func=_cmd_serve)

    bench = subparsers.add_parser(
        "bench-serve",
        help="simulated robots against one policy server: latency, misses, batching on vs off",
    )
    bench.add_argument("--model", type=Path, help="bundle folder (default: models/rt1-tiny)")
    bench.add_argument("--robots", type=int, default=8, help="simulated robot clients")
    bench.add_argument("--rate-hz", type=float, default=5.0, help="each robot's control rate")
    bench.add_argument("--duration-s", type=float, default=120.0, help="paced run per setting")
    bench.add_argument(
        "--deadline-ms", type=float, default=0.0, help="per-step deadline; 0: half a period"
    )
    bench.add_argument(
        "--closed-loop-s",
        type=float,
        default=20.0,
        help="then every robot steps as fast as answers come, for throughput",
    )
    bench.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="the settings take turns this many times (a changing machine load hits all alike)",
    )
    bench.add_argument("--providers", nargs="+", default=["auto"], help="server's providers")
    bench.add_argument(
        "--intra-op-threads", type=int, default=0, help="server's threads per graph; 0: per core"
    )
    bench.add_argument("--json", type=Path, help="also write the results here")
    bench.set_defaults(func=_cmd_bench_serve)
