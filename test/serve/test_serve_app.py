"""The policy server's app: stateless steps that match the local Policy, 4xx answers naming the
field, limits, bearer tokens, OpenAPI, metrics, and the OpenVLA-compatible /act."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from rt_ros.runtime.errors import ConfigError
from rt_ros.runtime.openvla_protocol import array_from_json, array_to_json
from rt_ros.runtime.policy import Policy
from rt_ros.runtime.step_protocol import (
    history_to_bytes,
    step_query,
    tokens_from_text,
)
from rt_ros.serve.config import ServeConfig

INSTRUCTION = "pick up the apple"
TOKEN_SHAPE = (8, 128)


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(count)]


def _step(client, rgb: np.ndarray, history: np.ndarray, instruction: str = INSTRUCTION, **kw):
    query = step_query(instruction, "rgb8", len(history), rgb.shape[:2])
    return client.post(
        "/v1/step", params=query, content=rgb.tobytes() + history_to_bytes(history), **kw
    )


def _loc(response) -> list:
    return response.json()["detail"][0]["loc"]


def test_steps_with_a_client_window_match_the_local_policy(make_client, bundle_dir) -> None:
    """Eight steps (the window fills and slides): the served action is the local Policy's,
    up to float16 tokens."""
    client = make_client()
    local = Policy.from_bundle(bundle_dir)
    local.reset(INSTRUCTION)
    history = np.zeros((0, *TOKEN_SHAPE), np.float16)
    for index, rgb in enumerate(_frames(8)):
        response = _step(client, rgb, history)
        assert response.status_code == 200, response.text
        answer = response.json()
        expected = local.step(rgb, float(index))
        tokens = tokens_from_text(answer["frame_tokens"], TOKEN_SHAPE)
        newest = local.cache.window()[0, min(index, 5)]
        np.testing.assert_allclose(tokens, newest, rtol=2e-3, atol=2e-3)
        served = np.array(answer["action"]["tokens"])
        # float16 history may move an argmax by a bin; never further.
        assert np.abs(served - np.array(expected.tokens)).max() <= 1
        assert answer["action"]["mode"] == expected.mode
        history = np.concatenate([history, tokens[np.newaxis]])[-5:]


def test_jpeg_frames_are_accepted(make_client) -> None:
    client = make_client()
    ok, jpeg = cv2.imencode(".jpg", _frames(1)[0])
    assert ok
    response = client.post(
        "/v1/step", params=step_query(INSTRUCTION, "jpeg", 0, None), content=jpeg.tobytes()
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["action"]["tokens"]) == 11


@pytest.mark.parametrize(
    ("query", "body", "status", "loc"),
    [
        ({"frame_encoding": "jpeg"}, b"x", 422, ["query", "instruction"]),
        ({"instruction": INSTRUCTION, "frame_encoding": "gif"}, b"x", 422,
         ["query", "frame_encoding"]),
        ({"instruction": "x" * 1001, "frame_encoding": "jpeg"}, b"x", 422,
         ["query", "instruction"]),
        ({"instruction": "   ", "frame_encoding": "rgb8", "frame_height": 2, "frame_width": 2},
         bytes(12), 422, ["query", "instruction"]),
        ({"instruction": INSTRUCTION, "frame_encoding": "jpeg", "history_frames": 6}, b"x", 422,
         ["query", "history_frames"]),
        ({"instruction": INSTRUCTION, "frame_encoding": "jpeg", "history_frames": 1}, bytes(100),
         422, ["body", "frame"]),
        ({"instruction": INSTRUCTION, "frame_encoding": "jpeg"}, b"not a jpeg", 422,
         ["body", "frame"]),
        ({"instruction": INSTRUCTION, "frame_encoding": "rgb8"}, bytes(12), 422,
         ["query", "frame_height"]),
        ({"instruction": INSTRUCTION, "frame_encoding": "rgb8", "frame_height": 2,
          "frame_width": 2}, bytes(11), 422, ["body", "frame"]),
        ({"instruction": INSTRUCTION, "frame_encoding": "rgb8", "frame_height": 9000,
          "frame_width": 9000}, bytes(12), 422, ["body", "frame"]),
    ],
)  # fmt: skip
def test_bad_steps_get_a_4xx_naming_the_field(make_client, query, body, status, loc) -> None:
    client = make_client()
    response = client.post("/v1/step", params=query, content=body)
    assert response.status_code == status, response.text
    assert _loc(response) == loc
    # The server keeps serving everyone else.
    assert _step(client, _frames(1)[0], np.zeros((0, *TOKEN_SHAPE), np.float16)).status_code == 200


def test_non_finite_history_tokens_are_refused(make_client) -> None:
    client = make_client()
    history = np.zeros((2, *TOKEN_SHAPE), np.float16)
    history[1, 3, 7] = np.nan
    response = _step(client, _frames(1)[0], history)
    assert response.status_code == 422
    assert _loc(response) == ["body", "history"]
    assert "finite" in response.json()["detail"][0]["msg"]


def test_a_jpeg_declaring_a_huge_size_is_refused_before_decoding(make_client) -> None:
    client = make_client(max_frame_pixels=64 * 64)
    _, jpeg = cv2.imencode(".jpg", np.zeros((128, 128, 3), np.uint8))
    response = client.post(
        "/v1/step", params=step_query(INSTRUCTION, "jpeg", 0, None), content=jpeg.tobytes()
    )
    assert response.status_code == 422
    assert _loc(response) == ["body", "frame"]


def test_bodies_over_the_limit_get_413(make_client) -> None:
    client = make_client(max_request_bytes=10_000)
    response = _step(client, _frames(1)[0], np.zeros((0, *TOKEN_SHAPE), np.float16))
    assert response.status_code == 413
    assert _loc(response) == ["body"]


def test_a_token_guards_everything_but_healthz(make_client) -> None:
    client = make_client(token="s3cret")
    assert client.get("/healthz").status_code == 200
    refused = client.get("/v1/info")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert _loc(refused) == ["header", "authorization"]
    assert client.get("/v1/info", headers={"authorization": "Bearer wrong"}).status_code == 401
    good = client.get("/v1/info", headers={"authorization": "Bearer s3cret"})
    assert good.status_code == 200
    assert good.json()["history_length"] == 6


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "robots.example"])
def test_listening_beyond_loopback_needs_a_token_or_insecure(host: str) -> None:
    with pytest.raises(ConfigError, match="give a bearer token"):
        ServeConfig(host=host)
    ServeConfig(host=host, token="t")
    ServeConfig(host=host, insecure=True)
    for loopback in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        ServeConfig(host=loopback)


def test_openapi_documents_both_apis(make_client) -> None:
    schema = make_client().get("/openapi.json").json()
    step = schema["paths"]["/v1/step"]["post"]
    assert "application/octet-stream" in step["requestBody"]["content"]
    assert {p["name"] for p in step["parameters"]} >= {
        "instruction",
        "frame_encoding",
        "history_frames",
    }
    assert "StepResponse" in schema["components"]["schemas"]
    assert "application/json" in schema["paths"]["/act"]["post"]["requestBody"]["content"]


def test_openvla_act_answers_seven_floats(make_client, bundle_dir) -> None:
    client = make_client()
    rgb = _frames(1, seed=3)[0]
    response = client.post("/act", json={"image": array_to_json(rgb), "instruction": INSTRUCTION})
    assert response.status_code == 200, response.text
    action = array_from_json(response.json(), "action", 7)
    assert action.shape == (7,)
    local = Policy.from_bundle(bundle_dir)
    local.reset(INSTRUCTION)
    expected = local.step(rgb, 0.0)
    np.testing.assert_allclose(action[:3], [expected.role(f"arm.linear.{a}") for a in "xyz"])
    assert action[6] == pytest.approx(-expected.role("gripper"))  # OpenVLA: +1 opens
    # The double-encoded form of OpenVLA's client, and plain nested lists.
    encoded = json.dumps({"image": rgb.tolist(), "instruction": INSTRUCTION})
    assert client.post("/act", json={"encoded": encoded}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        (b"{", 400, ["body", "json"]),
        (b"[1, 2]", 422, ["body", "json"]),
        (b'{"image": [[[0, 0, 0]]]}', 422, ["body", "instruction"]),
        (b'{"instruction": "pick"}', 422, ["body", "image"]),
        (b'{"instruction": "pick", "image": "cat.png"}', 422, ["body", "image"]),
        (b'{"instruction": "pick", "image": [[1.5, 2.0]]}', 422, ["body", "image"]),
        (b'{"instruction": "pick", "image": {"__numpy__": "AAAA", "dtype": "|O", "shape": [3]}}',
         422, ["body", "image"]),
        (b'{"instruction": "pick", "image": {"__numpy__": "AAAA", "dtype": "|u1", '
         b'"shape": [100000, 100000, 3]}}', 422, ["body", "image"]),
    ],
)  # fmt: skip
def test_bad_act_requests_get_a_4xx_naming_the_field(make_client, body, status, loc) -> None:
    response = make_client().post("/act", content=body)
    assert response.status_code == status, response.text
    assert _loc(response) == loc


def test_metrics_count_requests_errors_and_batches(make_client) -> None:
    client = make_client()
    _step(client, _frames(1)[0], np.zeros((0, *TOKEN_SHAPE), np.float16))
    client.post("/v1/step", params={"frame_encoding": "jpeg"}, content=b"x")
    client.post("/v1/step", params=step_query(INSTRUCTION, "jpeg", 0, None), content=b"bad")
    text = client.get("/metrics").text
    assert 'rt_ros_requests_total{endpoint="/v1/step",status="200"} 1.0' in text
    assert 'rt_ros_requests_total{endpoint="/v1/step",status="422"} 2.0' in text
    assert 'rt_ros_request_errors_total{endpoint="/v1/step",field="frame"} 1.0' in text
    assert "rt_ros_batch_size_count 1.0" in text
    assert "rt_ros_inference_seconds_count 1.0" in text
    assert 'rt_ros_request_seconds_bucket{endpoint="/v1/step",le="+Inf"} 3.0' in text
