"""`rt-ros serve`: load a bundle, build the app, run it on uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from rt_ros.runtime.onnx_session import SessionConfig
from rt_ros.runtime.window_policy import WindowPolicy
from rt_ros.serve.app import create_app
from rt_ros.serve.config import ServeConfig

LOGGER = logging.getLogger(__name__)
# Seconds an idle keep-alive connection stays open: robots step several times a second.
KEEP_ALIVE_S = 30


def run_server(
    model_dir: Path, config: ServeConfig, session_config: SessionConfig, log_level: str = "info"
) -> None:
    """Serve `model_dir` until SIGINT/SIGTERM."""
    policy = WindowPolicy.from_bundle(model_dir, session_config)
    app = create_app(policy, config)
    LOGGER.info(
        "serving %s (preset %s) on http://%s:%d, batches of up to %d within %g ms%s",
        model_dir,
        policy.bundle.manifest.preset,
        config.host,
        config.port,
        config.max_batch_size,
        config.max_wait_ms,
        ", bearer token required" if config.token else "",
    )
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
