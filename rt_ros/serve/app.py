"""The policy server's ASGI app (FastAPI): rt_ros's stateless step API, OpenVLA's `POST /act`,
`/healthz`, Prometheus `/metrics`.

The robot keeps its own window of frame tokens and sends it with each new frame, so any replica
answers any step (no sticky routing). Bad input gets a 4xx whose `detail[].loc` names the field,
and never disturbs the other clients' steps.
"""

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from rt_ros.runtime.action import Action
from rt_ros.runtime.errors import (
    ActionDecodeError,
    FrameError,
    InstructionError,
    RtRosError,
    TokenWindowError,
)
from rt_ros.runtime.image_messages import check_frame_size, compressed_msg_to_rgb
from rt_ros.runtime.openvla_protocol import ArrayFieldError, array_from_json, array_to_json
from rt_ros.runtime.step_protocol import (
    ACT_PATH,
    FRAME_ENCODINGS,
    HEALTH_PATH,
    INFO_PATH,
    METRICS_PATH,
    STEP_CONTENT_TYPE,
    STEP_PATH,
    history_bytes,
    history_from_bytes,
    tokens_to_text,
)
from rt_ros.runtime.window_policy import WindowInput, WindowPolicy, WindowStep
from rt_ros.serve.batcher import StepBatcher
from rt_ros.serve.config import ServeConfig
from rt_ros.serve.guards import BearerTokenMiddleware, BodyLimitMiddleware
from rt_ros.serve.metrics import ServerMetrics

# OpenVLA's 7-D action, in its order: end-effector translation, roll/pitch/yaw, gripper.
OPENVLA_ROLES = (
    "arm.linear.x",
    "arm.linear.y",
    "arm.linear.z",
    "arm.angular.x",
    "arm.angular.y",
    "arm.angular.z",
)
# Every answer names the process that computed it (replicas behind a load balancer differ).
REPLICA_HEADER = "x-rt-ros-replica"
_KNOWN_PATHS = frozenset({STEP_PATH, INFO_PATH, ACT_PATH, HEALTH_PATH, METRICS_PATH})
# Errors of one step by class: the HTTP status and the request field at fault.
_STEP_ERRORS: tuple[tuple[type[Exception], int, tuple[str, str]], ...] = (
    (FrameError, 422, ("body", "frame")),
    (InstructionError, 422, ("query", "instruction")),
    (TokenWindowError, 422, ("body", "history")),
    (ActionDecodeError, 500, ("model", "action_logits")),
)


class StepAction(BaseModel):
    """The decoded action: values by dimension name, one token per dimension, the mode."""

    values: dict[str, float]
    tokens: list[int]
    mode: str | None


class StepResponse(BaseModel):
    """The new frame's tokens (append them to the window) and the action computed from it."""

    frame_tokens: str  # base64 of little-endian float16 [tokens_per_frame, token_dim]
    token_shape: list[int]
    action: StepAction
    server_ms: float  # arrival to answer on the server
    inference_ms: float  # model time of this step
    batch_size: int


class ServerInfo(BaseModel):
    """What a client needs to build requests and decode answers."""

    preset: str
    history_length: int
    tokens_per_frame: int
    token_dim: int
    token_dtype: str
    image_height_px: int
    image_width_px: int
    frame_encodings: list[str]
    action_space: dict[str, Any]
    providers: dict[str, str]
    max_request_bytes: int
    max_batch_size: int
    max_wait_ms: float


@dataclass(frozen=True)
class StepOutput:
    step: WindowStep
    batch_size: int


class RequestFieldError(Exception):
    """A request refused before it reaches the model: status, (where, field) and why."""

    def __init__(self, status: int, loc: tuple[str, str], message: str) -> None:
        super().__init__(message)
        self.status, self.loc, self.message = status, loc, message


def _step_error(error: Exception) -> RequestFieldError:
    for kind, status, loc in _STEP_ERRORS:
        if isinstance(error, kind):
            return RequestFieldError(status, loc, str(error))
    return RequestFieldError(500, ("server", "inference"), f"inference failed: {error}")


def _decode_frame(
    data: bytes, encoding: str, height: int | None, width: int | None, max_pixels: int
) -> np.ndarray:
    """The frame part of a step body -> HxWx3 uint8 RGB; FrameError naming what is off."""
    if encoding == "rgb8":
        if height is None or width is None:
            raise RequestFieldError(
                422, ("query", "frame_height"), "rgb8 frames need frame_height and frame_width"
            )
        check_frame_size(width, height, max_pixels)
        if len(data) != height * width * 3:
            raise FrameError(
                f"an rgb8 frame of {width}x{height} px takes {height * width * 3} bytes, got "
                f"{len(data)}"
            )
        return np.frombuffer(data, np.uint8).reshape(height, width, 3)
    return compressed_msg_to_rgb(SimpleNamespace(format=encoding, data=data), max_pixels)


def _act_image(payload: dict, max_pixels: int) -> np.ndarray:
    image = array_from_json(payload.get("image"), "image", max_pixels * 3)
    if image.dtype.kind == "i" and image.size and image.min() >= 0 and image.max() <= 255:
        image = image.astype(np.uint8)  # nested lists of 0..255
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise RequestFieldError(
            422,
            ("body", "image"),
            f"image must be HxWx3 uint8 RGB, got {image.dtype} of shape {image.shape}",
        )
    return image


def openvla_action(action: Action, gripper_close_sign: int) -> np.ndarray:
    """An rt_ros action as OpenVLA's 7 floats; OpenVLA's gripper: +1 opens, -1 closes."""
    arm = [action.role(role) for role in OPENVLA_ROLES]
    closedness = gripper_close_sign * action.role("gripper")
    return np.array([*arm, -closedness], np.float64)


def create_app(policy: WindowPolicy, config: ServeConfig) -> FastAPI:
    """An app serving `policy`; its batching loop runs for the app's lifespan."""
    metrics = ServerMetrics()
    replica = f"{socket.gethostname()}:{os.getpid()}"
    manifest = policy.bundle.manifest
    token_shape = policy.token_shape
    most_history = policy.history_length - 1

    def run_batch(items: Sequence[WindowInput]) -> Iterator[StepOutput | Exception]:
        for result in policy.step_batch(items):
            if isinstance(result, WindowStep):
                metrics.inference.observe(result.timings.total_ms / 1e3)
                yield StepOutput(result, len(items))
            else:
                yield result

    batcher: StepBatcher[WindowInput, StepOutput] = StepBatcher(
        run_batch, config.max_batch_size, config.max_wait_s, metrics
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title="rt_ros policy server",
        description=__doc__,
        version="1",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.batcher = batcher

    def refuse(endpoint: str, error: RequestFieldError) -> HTTPException:
        metrics.errors.labels(endpoint, error.loc[1]).inc()
        detail = [{"loc": list(error.loc), "msg": error.message, "type": "value_error"}]
        return HTTPException(error.status, detail=detail)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Any) -> Response:
        started_s = time.perf_counter()
        response = await call_next(request)
        response.headers[REPLICA_HEADER] = replica
        endpoint = request.url.path if request.url.path in _KNOWN_PATHS else "other"
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(time.perf_counter() - started_s)
        return response

    @app.get(HEALTH_PATH, summary="Liveness: 200 while the batching loop runs")
    async def healthz() -> JSONResponse:
        if batcher.stopped:
            return JSONResponse({"status": "inference loop stopped"}, status_code=503)
        return JSONResponse({"status": "ok", "preset": manifest.preset})

    @app.get(METRICS_PATH, summary="Prometheus metrics (text exposition format)")
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.get(INFO_PATH, response_model=ServerInfo, summary="Model and wire-format facts")
    async def info() -> ServerInfo:
        return ServerInfo(
            preset=manifest.preset,
            history_length=policy.history_length,
            tokens_per_frame=token_shape[0],
            token_dim=token_shape[1],
            token_dtype="float16",
            image_height_px=policy.image_size_px[0],
            image_width_px=policy.image_size_px[1],
            frame_encodings=list(FRAME_ENCODINGS),
            action_space=policy.action_space.to_dict(),
            providers=policy.bundle.providers,
            max_request_bytes=config.max_request_bytes,
            max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms,
        )

    step_body = {
        "requestBody": {
            "required": True,
            "description": (
                "The newest frame's bytes (JPEG, PNG, or raw RGB rows for rgb8), then the tokens "
                "of `history_frames` earlier frames of the episode, oldest first, as "
                "little-endian float16 [history_frames, tokens_per_frame, token_dim] (see "
                f"{INFO_PATH}). The frame part is whatever precedes the tokens."
            ),
            "content": {STEP_CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    }

    @app.post(
        STEP_PATH,
        response_model=StepResponse,
        summary="One RT-1 step: newest frame + the client's token window -> tokens + action",
        openapi_extra=step_body,
    )
    async def step(
        request: Request,
        instruction: Annotated[str, Query(min_length=1, max_length=config.max_instruction_chars)],
        frame_encoding: Literal["jpeg", "png", "rgb8"],
        history_frames: Annotated[int, Query(ge=0, le=most_history)] = 0,
        frame_height: Annotated[int | None, Query(ge=1, le=65535)] = None,
        frame_width: Annotated[int | None, Query(ge=1, le=65535)] = None,
    ) -> StepResponse:
        started_s = time.perf_counter()
        body = await request.body()
        split = len(body) - history_bytes(history_frames, token_shape)
        try:
            if split < 1:
                raise RequestFieldError(
                    422,
                    ("body", "frame"),
                    f"body of {len(body)} bytes holds no frame before {history_frames} frames "
                    f"of tokens ({history_bytes(history_frames, token_shape)} bytes)",
                )
            history = history_from_bytes(body[split:], history_frames, token_shape)
            rgb = await run_in_threadpool(
                _decode_frame,
                body[:split],
                frame_encoding,
                frame_height,
                frame_width,
                config.max_frame_pixels,
            )
            output = await batcher.submit(WindowInput(instruction, rgb, history))
        except RequestFieldError as error:
            raise refuse(STEP_PATH, error) from error
        except RtRosError as error:
            raise refuse(STEP_PATH, _step_error(error)) from error
        if config.inject_delay_ms:
            await asyncio.sleep(config.inject_delay_ms / 1e3)
        result = output.step
        action = result.action
        return StepResponse(
            frame_tokens=tokens_to_text(result.frame_tokens),
            token_shape=list(token_shape),
            action=StepAction(
                values=dict(action.values), tokens=list(action.tokens), mode=action.mode
            ),
            server_ms=(time.perf_counter() - started_s) * 1e3,
            inference_ms=result.timings.total_ms,
            batch_size=output.batch_size,
        )

    act_body = {
        "requestBody": {
            "required": True,
            "description": (
                'OpenVLA\'s request: {"image": HxWx3 uint8 RGB as a json_numpy object or nested '
                'lists, "instruction": str, "unnorm_key": optional, ignored}, or the same '
                'JSON as a string under "encoded". The answer is a json_numpy float64 array of '
                "7: dx dy dz droll dpitch dyaw gripper (+1 opens). The step sees this frame "
                "alone (no history), as OpenVLA does."
            ),
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }

    @app.post(
        ACT_PATH,
        summary="OpenVLA-compatible: image + instruction -> 7-D action",
        openapi_extra=act_body,
    )
    async def act(request: Request) -> JSONResponse:
        try:
            try:
                payload = json.loads(await request.body())
                if isinstance(payload, dict) and "encoded" in payload:
                    payload = json.loads(payload["encoded"])
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as error:
                raise RequestFieldError(
                    400, ("body", "json"), f"body is not JSON: {error}"
                ) from error
            if not isinstance(payload, dict):
                raise RequestFieldError(422, ("body", "json"), "body must be a JSON object")
            instruction = payload.get("instruction")
            if not isinstance(instruction, str) or not instruction.strip():
                raise RequestFieldError(
                    422, ("body", "instruction"), "instruction must be a non-empty string"
                )
            if len(instruction) > config.max_instruction_chars:
                raise RequestFieldError(
                    422,
                    ("body", "instruction"),
                    f"instruction of {len(instruction)} characters exceeds "
                    f"{config.max_instruction_chars}",
                )
            try:
                image = _act_image(payload, config.max_frame_pixels)
            except ArrayFieldError as error:
                raise RequestFieldError(422, ("body", "image"), str(error)) from error
            history = np.zeros((0, *token_shape), np.float16)
            output = await batcher.submit(WindowInput(instruction, image, history))
        except RequestFieldError as error:
            raise refuse(ACT_PATH, error) from error
        except RtRosError as error:
            mapped = _step_error(error)
            if mapped.loc == ("body", "frame"):
                mapped.loc = ("body", "image")
            if mapped.loc == ("query", "instruction"):
                mapped.loc = ("body", "instruction")
            raise refuse(ACT_PATH, mapped) from error
        if config.inject_delay_ms:
            await asyncio.sleep(config.inject_delay_ms / 1e3)
        values = openvla_action(output.step.action, policy.action_space.gripper_close_sign)
        return JSONResponse(array_to_json(values))

    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_request_bytes)
    if config.token:
        app.add_middleware(
            BearerTokenMiddleware, token=config.token, open_paths=frozenset({HEALTH_PATH})
        )
    return app
