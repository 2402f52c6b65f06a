"""The policy server on Ray Serve: the same ASGI app in every replica, replicas and autoscaling
across a Ray cluster's CPUs and GPUs.

Robots keep their own token window, so Ray's router may send any step to any replica. Each
replica builds the app (bundle, batching loop, metrics) in its own process; /metrics and
/healthz answer for the replica that took the request. Two ways to run it:

    rt-ros serve --ray --replicas 2            # a local Ray instance, or RAY_ADDRESS's cluster
    serve run rt_ros.serve.ray_deployment:build model=models/rt1-tiny num_replicas=2
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from ray import serve

from rt_ros.runtime.onnx_session import SessionConfig
from rt_ros.runtime.window_policy import WindowPolicy
from rt_ros.serve.app import create_app
from rt_ros.serve.config import ServeConfig

DEPLOYMENT_NAME = "rt_ros_policy"


def _replica_app(model_dir: str, config: ServeConfig, session: SessionConfig) -> Any:
    """Runs in each replica when it starts: load the bundle, build the app."""
    return create_app(WindowPolicy.from_bundle(model_dir, session), config)


def ray_application(
    model_dir: Path | str,
    config: ServeConfig | None = None,
    session: SessionConfig | None = None,
    num_replicas: int = 1,
    autoscaling: dict[str, Any] | None = None,
    num_cpus_per_replica: float = 1.0,
    num_gpus_per_replica: float = 0.0,
) -> serve.Application:
    """A Ray Serve application of the policy server; `autoscaling` (Ray's autoscaling_config,
    e.g. {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 8}) replaces the
    fixed `num_replicas`."""
    # Replicas sit behind Ray's proxy; the address the proxy listens on is checked by the caller.
    replica_config = ServeConfig(**{**(config or ServeConfig()).__dict__, "host": "127.0.0.1"})
    model_path, session = str(Path(model_dir).resolve()), session or SessionConfig()

    def builder() -> Any:  # Ray tells a builder from an ASGI app by its lack of parameters
        return _replica_app(model_path, replica_config, session)

    options: dict[str, Any] = {
        "name": DEPLOYMENT_NAME,
        "ray_actor_options": {"num_cpus": num_cpus_per_replica, "num_gpus": num_gpus_per_replica},
    }
    if autoscaling:
        options["autoscaling_config"] = autoscaling
    else:
        options["num_replicas"] = num_replicas
    return serve.deployment(serve.ingress(builder)(), **options).bind()


def build(args: dict[str, str]) -> serve.Application:
    """Application builder for `serve run rt_ros.serve.ray_deployment:build key=value ...`:
    model, num_replicas, providers (comma-separated), num_cpus, num_gpus, token,
    max_batch_size, max_wait_ms."""
    config = ServeConfig(
        token=args.get("token", ""),
        max_batch_size=int(args.get("max_batch_size", ServeConfig.max_batch_size)),
        max_wait_ms=float(args.get("max_wait_ms", ServeConfig.max_wait_ms)),
    )
    session = SessionConfig(providers=tuple(args.get("providers", "auto").split(",")))
    return ray_application(
        args.get("model", "models/rt1-tiny"),
        config,
        session,
        num_replicas=int(args.get("num_replicas", 1)),
        num_cpus_per_replica=float(args.get("num_cpus", 1.0)),
        num_gpus_per_replica=float(args.get("num_gpus", 0.0)),
    )


def run_on_ray(
    model_dir: Path,
    config: ServeConfig,
    session: SessionConfig,
    num_replicas: int,
    num_cpus_per_replica: float,
    num_gpus_per_replica: float,
) -> None:
    """`rt-ros serve --ray`: Ray's HTTP proxy on config.host:config.port, until interrupted."""
    import ray

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops as Ctrl-C does: the replicas are taken down

    signal.signal(signal.SIGTERM, interrupt)
    ray.init(include_dashboard=False)  # RAY_ADDRESS joins a running cluster
    try:
        serve.start(http_options={"host": config.host, "port": config.port})
        serve.run(
            ray_application(
                model_dir,
                config,
                session,
                num_replicas=num_replicas,
                num_cpus_per_replica=num_cpus_per_replica,
                num_gpus_per_replica=num_gpus_per_replica,
            ),
            blocking=True,
        )
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
