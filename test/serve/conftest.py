"""Fixtures for the policy server: the shipped rt1-tiny bundle, the app in process, and
`rt-ros serve` as a real process on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the policy server needs the serve extra")


@pytest.fixture(scope="session")
def bundle_dir(shipped_bundle: Path) -> Path:
    return shipped_bundle


@pytest.fixture(scope="session")
def window_policy(bundle_dir: Path):
    from rt_ros.runtime.onnx_session import SessionConfig
    from rt_ros.runtime.window_policy import WindowPolicy

    return WindowPolicy.from_bundle(bundle_dir, SessionConfig(providers=("cpu",)))


@pytest.fixture
def make_client(window_policy) -> Iterator:
    """make_client(**ServeConfig fields) -> a TestClient on a fresh app (lifespan running)."""
    from fastapi.testclient import TestClient

    from rt_ros.serve.app import create_app
    from rt_ros.serve.config import ServeConfig

    clients = []

    def make(**fields):
        client = TestClient(create_app(window_policy, ServeConfig(**fields)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def server(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """`rt-ros serve` on rt1-tiny (CPU), batching up to 4 steps within 50 ms."""
    from rt_ros.serve.process import ServerProcess

    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with ServerProcess(
        bundle_dir,
        ["--providers", "cpu", "--max-batch-size", "4", "--max-wait-ms", "50"],
        log_path=log,
    ) as process:
        yield process
