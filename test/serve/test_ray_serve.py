"""The policy server on Ray Serve: a local Ray instance, two replicas, a robot's steps spread
over both (each step carries its own window, so the answers match the local Policy)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

serve = pytest.importorskip("ray.serve", reason="Ray Serve is the ray extra")
import ray  # noqa: E402

from rt_ros.runtime.onnx_session import SessionConfig  # noqa: E402
from rt_ros.runtime.policy import Policy  # noqa: E402
from rt_ros.runtime.remote_policy import RemoteConfig, RemotePolicy  # noqa: E402
from rt_ros.runtime.step_protocol import history_to_bytes, step_query  # noqa: E402
from rt_ros.serve.app import REPLICA_HEADER  # noqa: E402
from rt_ros.serve.process import free_port  # noqa: E402
from rt_ros.serve.ray_deployment import ray_application  # noqa: E402

INSTRUCTION = "pick up the apple"
# serve.run returns once the replicas are up; then the proxy may take a moment to route.
READY_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def ray_url(bundle_dir) -> Iterator[str]:
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(
            ray_application(
                bundle_dir,
                session=SessionConfig(providers=("cpu",), intra_op_threads=1),
                num_replicas=2,
                num_cpus_per_replica=0.5,
            ),
            blocking=False,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=5.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        yield url
    finally:
        serve.shutdown()
        ray.shutdown()


def test_two_replicas_answer_one_robots_steps(ray_url: str, bundle_dir) -> None:
    # Which replica answered: the header every answer carries. Fresh connections spread them.
    frame = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    query = step_query(INSTRUCTION, "rgb8", 0, (128, 128))
    body = frame.tobytes() + history_to_bytes(np.zeros((0, 8, 128), np.float16))
    replicas = set()
    for _ in range(40):
        response = httpx.post(ray_url + "/v1/step", params=query, content=body, timeout=60.0)
        assert response.status_code == 200, response.text
        replicas.add(response.headers[REPLICA_HEADER])
        if len(replicas) == 2:
            break
    assert len(replicas) == 2

    # A robot's episode across both replicas is the local Policy's episode.
    remote = RemotePolicy(RemoteConfig(ray_url, deadline_s=60.0, frame_encoding="rgb8"))
    local = Policy.from_bundle(bundle_dir)
    remote.reset(INSTRUCTION)
    local.reset(INSTRUCTION)
    rng = np.random.default_rng(1)
    for index in range(8):
        rgb = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
        got = remote.step(rgb, 0.3 * index)
        expected = local.step(rgb, 0.3 * index)
        assert np.abs(np.array(got.tokens) - np.array(expected.tokens)).max() <= 1
    remote.close()
