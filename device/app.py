"""HTTP front of the device (FastAPI): a thin layer over :class:`device.service.DeviceService`.

Endpoints (OpenAPI docs at ``/docs``):

- ``POST /v1/infer``: one image, as multipart form field ``file`` (PNG/JPEG/... any size
  and colour mode), as a raw body with ``Content-Type: image/*`` or
  ``application/octet-stream``, or as JSON ``{"pixels": [...], "pixel_range": "0-255"}``
  (see :mod:`device.preprocess`). Answers label, probabilities, symbols/bits sent, the knobs
  and SNR used, the channel's CSI and the per-stage latency in seconds.
- ``GET/PUT /v1/knobs``: beta, snr_mode, snr_db, variable_length (PUT is a partial update).
- ``GET /v1/channel``, ``PUT /v1/channel/psnr`` ``{"psnr_db": 12.5}``: channel state/PSNR.
- ``GET /v1/model``: the model the device runs.
- ``GET /healthz`` (process up), ``GET /readyz`` (model loaded, channel reachable, the edge
  behind it serving the device's model id: 503 otherwise, naming both ids on a mismatch),
  ``GET /metrics`` (Prometheus).

Status codes: 400 unreadable payload (empty body, not an image, invalid JSON), 413 body over
``max_upload_bytes`` (refused from the Content-Length header before reading the body, or
as soon as a streamed body passes the limit), 415 unsupported Content-Type, 422 invalid
values (pixels, knobs outside the trained ranges), 502 channel/edge refused the request
(e.g. the edge serves another model id: the message names both),
503 channel/edge unreachable or deadline exceeded.
"""

from __future__ import annotations

import json
import logging
import math
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from device.channel_client import ChannelClient, ChannelError
from device.encoder import OnnxEncoder
from device.knobs import SNR_MODES, KnobError, KnobStore, default_knobs
from device.metrics import DeviceMetrics
from device.preprocess import PreprocessError
from device.service import DeviceService
from device.settings import DeviceSettings
from device.web import add_web_routes

log = logging.getLogger("device")
INFER_PATH = "/v1/infer"


class KnobsUpdate(BaseModel):
    """Partial update of the knobs; omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid")
    beta: float | None = Field(None, description="linear, > 0, inside the trained beta range")
    snr_mode: str | None = Field(None, description=f"one of {SNR_MODES}")
    snr_db: float | None = Field(None, description="manual SNR in dB, inside the trained range")
    variable_length: bool | None = Field(None, description="send only the active prefix")


class PsnrUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    psnr_db: float = Field(..., description="channel PSNR in dB (10·log10(1/sigma^2))")


class BodyTooLarge(Exception):
    """Raised from the wrapped ``receive`` when a streamed body passes the limit."""


class UploadLimit:
    """ASGI middleware: 413 for ``POST /v1/infer`` bodies over ``max_bytes``.

    A declared Content-Length over the limit is refused before any of the body is read;
    a chunked body is counted as it streams and refused as soon as it passes the limit.
    """

    def __init__(self, app, max_bytes: int, metrics: DeviceMetrics):
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    def _message(self) -> dict[str, str]:
        return {"detail": f"upload larger than the limit of {self.max_bytes} bytes"}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != INFER_PATH:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            self.metrics.requests.inc()
            self.metrics.failures.labels(reason="too_large").inc()
            return await JSONResponse(self._message(), status_code=413)(scope, receive, send)

        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            self.metrics.failures.labels(reason="too_large").inc()
            if not started:
                await JSONResponse(self._message(), status_code=413)(scope, receive, send)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


INFER_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "pixels": {
                            "type": "array",
                            "description": "nested array shaped like the model input [C,H,W] "
                            "([H,W] for 1 channel)",
                            "items": {},
                        },
                        "pixel_range": {"type": "string", "enum": ["0-255", "0-1"]},
                    },
                    "required": ["pixels"],
                }
            },
        },
    }
}


def build_service(settings: DeviceSettings, metrics: DeviceMetrics) -> DeviceService:
    """Load the model and connect (lazily) to the channel."""
    encoder = OnnxEncoder(settings.model, threads=settings.ort_threads)
    knobs = default_knobs(
        encoder.manifest,
        beta=settings.beta,
        snr_mode=settings.snr_mode,
        snr_db=settings.snr_db,
        variable_length=settings.variable_length,
    )
    channel = ChannelClient(settings.channel, deadline_s=settings.deadline_s)
    return DeviceService(encoder, channel, KnobStore(encoder.manifest, knobs), metrics)


def create_app(settings: DeviceSettings, service: DeviceService | None = None) -> FastAPI:
    """The FastAPI app; the model is loaded here, before the server accepts requests."""
    metrics = service.metrics if service is not None else DeviceMetrics()
    service = service or build_service(settings, metrics)
    manifest = service.manifest

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        service.channel.close()

    app = FastAPI(
        title="Hyper-VIB device",
        version="1",
        description=__doc__,
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(UploadLimit, max_bytes=settings.max_upload_bytes, metrics=metrics)

    def knobs_view() -> dict[str, Any]:
        return {
            **service.knobs.get().as_dict(),
            "beta_range": list(manifest.beta_range),
            "snr_db_range": list(manifest.snr_db_range),
            "snr_modes": list(SNR_MODES),
            "variable_length_supported": manifest.variable_length,
        }

    @app.post(INFER_PATH, openapi_extra=INFER_OPENAPI, summary="Classify one image")
    async def infer(request: Request):
        metrics.requests.inc()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type == "multipart/form-data":
                form = await request.form(max_files=1, max_fields=4)
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise PreprocessError('multipart body needs a file field named "file"', 422)
                data = await upload.read()
                result = await run_in_threadpool(service.infer_image, data)
            elif content_type == "application/json":
                body = await request.body()
                if not body:
                    raise PreprocessError('empty body: send JSON {"pixels": [...]}', 400)
                try:
                    payload = json.loads(body)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise PreprocessError(f"invalid JSON: {exc}", 400) from exc
                result = await run_in_threadpool(service.infer_pixels, payload)
            elif content_type.startswith("image/") or content_type in (
                "application/octet-stream",
                "",
            ):
                data = await request.body()
                result = await run_in_threadpool(service.infer_image, data)
            else:
                metrics.failures.labels(reason="bad_input").inc()
                return _error(
                    415,
                    f"unsupported Content-Type {content_type!r}: use multipart/form-data "
                    "(field 'file'), image/*, or application/json",
                )
        except PreprocessError as exc:
            metrics.failures.labels(reason="too_large" if exc.status == 413 else "bad_input").inc()
            return _error(exc.status, str(exc))
        except KnobError as exc:
            metrics.failures.labels(reason="bad_knobs").inc()
            return _error(422, str(exc))
        except ChannelError as exc:
            reason = "channel_unavailable" if exc.status == 503 else "channel_error"
            metrics.failures.labels(reason=reason).inc()
            return _error(exc.status, str(exc))
        except BodyTooLarge:
            raise  # answered 413 by UploadLimit
        except Exception as exc:  # a bug, not the caller's fault: no stack trace in the reply
            log.exception("inference failed")
            metrics.failures.labels(reason="internal").inc()
            return _error(500, f"internal error: {type(exc).__name__}")
        return result

    @app.get("/v1/knobs", summary="Current knobs and their allowed ranges")
    async def get_knobs():
        return knobs_view()

    @app.put("/v1/knobs", summary="Change knobs (partial update; 422 when out of range)")
    async def put_knobs(update: KnobsUpdate):
        changes = {name: getattr(update, name) for name in update.model_fields_set}
        try:
            knobs = service.knobs.update(changes)
        except KnobError as exc:
            return _error(422, str(exc))
        metrics.beta.set(knobs.beta)
        return knobs_view()

    @app.get("/v1/channel", summary="The channel's state (GetState)")
    async def get_channel():
        try:
            return await run_in_threadpool(service.channel_state)
        except ChannelError as exc:
            return _error(exc.status, str(exc))

    @app.put("/v1/channel/psnr", summary="Set the channel PSNR in dB (SetPsnr)")
    async def put_channel_psnr(update: PsnrUpdate):
        if not math.isfinite(update.psnr_db):
            return _error(422, f"psnr_db must be finite, got {update.psnr_db}")
        try:
            return await run_in_threadpool(service.set_channel_psnr, update.psnr_db)
        except ChannelError as exc:
            return _error(exc.status, str(exc))

    @app.get("/v1/model", summary="The model this device runs")
    async def get_model():
        return {
            "model_id": manifest.model_id,
            "task": manifest.task,
            "dataset": manifest.dataset,
            "input_shape": list(manifest.input_shape),
            "class_names": list(manifest.class_names),
            "d": manifest.d,
            "bits": manifest.bits,
            "variable_length": manifest.variable_length,
            "beta_range": list(manifest.beta_range),
            "snr_db_range": list(manifest.snr_db_range),
        }

    @app.get("/healthz", summary="Process is up")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Model loaded, channel reachable, edge serving the same model")
    async def readyz():
        try:
            ready, report = await run_in_threadpool(service.readiness)
        except ChannelError as exc:
            return _error(503, f"not ready: {exc}")
        if not ready:
            return JSONResponse({**report, "detail": f"not ready: {report['detail']}"}, 503)
        return report

    add_web_routes(app, settings.data_dir, manifest.class_names)  # GET /, /v1/samples/random

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus_metrics():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
