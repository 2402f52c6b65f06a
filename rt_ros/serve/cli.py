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
    run_server(_model_dir(args.model), config, session, args.log_level)
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Add `serve` to the `rt-ros` command's subparsers."""
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
        help="ONNX Runtime execution providers in order: auto, tensorrt, cuda, cpu",
    )
    serve.add_argument("--intra-op-threads", type=int, default=0, help="0: one per core")
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
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    serve.set_defaults(func=_cmd_serve)
