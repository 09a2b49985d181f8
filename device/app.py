"""HTTP front of the device (FastAPI): a thin layer over :class:`device.service.DeviceService`.

Endpoints (OpenAPI docs at ``/docs``):

- ``POST /v1/infer``: one image, as multipart form field ``file`` (PNG/JPEG/... any size
  and colour mode), as a raw body with ``Content-Type: image/*`` or
  ``application/octet-stream``, or as JSON ``{"pixels": [...], "pixel_range": "0-255"}``
  (see :mod:`device.preprocess`). Answers label, probabilities, symbols/bits sent, the knobs
  and SNR used, the channel's CSI and the per-stage latency in seconds; for an image
  (reconstruction) model, ``reconstruction``: the sent and received images as base64 PNGs
  with their PSNR and SSIM (:mod:`device.reconstruction`). ``?task=...`` names the reply
  the caller expects: 422 naming the model's task when it differs.
  Optional header ``X-Request-Id`` (1-128 of ``A-Za-z0-9._:-``): the reply's
  ``request_id`` echoes it (else a random id); see :mod:`device.service`.
- ``GET/PUT /v1/knobs``: beta, snr_mode, snr_db, variable_length (PUT is a partial update).
- ``GET /v1/channel``, ``PUT /v1/channel/psnr`` ``{"psnr_db": 12.5}``: channel state/PSNR;
  ``PUT /v1/channel/link-mode`` ``{"mode": "ideal"}``: the channel's link (analog, ideal,
  ldpc-qam; the digital ones carry an entropy-coded model's indices);
  ``PUT /v1/channel/fading`` ``{"kind": "rayleigh"}``: the channel's block fading.
- ``GET /v1/model``: the model the device runs.
- ``GET /healthz`` (process up), ``GET /readyz`` (model loaded, channel reachable, the edge
  behind it serving the device's model id: 503 otherwise, naming both ids on a mismatch),
  ``GET /metrics`` (Prometheus).

Access: with an admin token (``--admin-token-file`` / ``--admin-token``), ``PUT /v1/knobs``,
``PUT /v1/channel/psnr``, ``PUT /v1/channel/link-mode`` and ``PUT /v1/channel/fading`` need
``Authorization: Bearer <token>`` (401 otherwise); the device passes the caller's token on to
the channel's ``SetPsnr`` / ``SetLinkMode`` / ``SetFading``, which check their own.
Inference and every GET stay open.

Status codes: 400 unreadable payload (empty body, not an image, invalid JSON), 413 body over
``max_upload_bytes`` (refused from the Content-Length header before reading the body, or
as soon as a streamed body passes the limit), 415 unsupported Content-Type, 422 invalid
values (pixels, knobs outside the trained ranges; one line naming the field), 401 missing or
wrong admin token, 408 a request body not received within ``http_body_timeout_s`` (a slow
upload is cut off; it never holds up other clients), 502 channel/edge refused the request
(e.g. the edge serves another model id: the message names both),
503 channel/edge unreachable or deadline exceeded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from device.channel_client import ChannelClient, ChannelError
from device.encoder import OnnxEncoder
from device.knobs import SNR_MODES, KnobError, default_knobs, open_knob_store
from device.metrics import DeviceMetrics
from device.preprocess import PreprocessError
from device.service import DeviceService
from device.settings import DeviceSettings
from device.web import add_web_routes
from shared.service.security import bearer_token, check_admin

log = logging.getLogger("device")
INFER_PATH = "/v1/infer"
# request counter labels: these paths by name, everything else as "other"
METRIC_PATHS = frozenset(
    (INFER_PATH, "/v1/knobs", "/v1/channel", "/v1/channel/psnr", "/v1/channel/link-mode",
     "/v1/channel/fading", "/v1/model", "/v1/samples/random", "/healthz", "/readyz",
     "/metrics", "/")
)  # fmt: skip


class KnobsUpdate(BaseModel):
    """Partial update of the knobs; omitted fields keep their value.

    Strict types: a number is a JSON number (an integer is taken as a float), a flag is
    true/false; ``{"beta": true}``, ``{"beta": "0.1"}`` or ``{"variable_length": 1}`` is a 422,
    not a silent conversion."""

    model_config = ConfigDict(extra="forbid", strict=True)
    beta: float | None = Field(None, description="linear, > 0, inside the trained beta range")
    snr_mode: str | None = Field(None, description=f"one of {SNR_MODES}")
    snr_db: float | None = Field(None, description="manual SNR in dB, inside the trained range")
    variable_length: bool | None = Field(None, description="send only the active prefix")


class PsnrUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    psnr_db: float = Field(..., description="channel PSNR in dB (10·log10(1/sigma^2))")


class LinkModeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    mode: Literal["analog", "ideal", "ldpc-qam"] = Field(
        ..., description="analog symbols, or the entropy-coded digital link (ideal / LDPC + QAM)"
    )


class FadingUpdate(BaseModel):
    """The channel's block fading (SetFading; docs/FADING.md): every field but ``kind``
    optional, a bad combination (a K-factor without rician) is the channel's 422."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["none", "rayleigh", "rician"] = Field(..., description="none = AWGN")
    k_factor: float = Field(0.0, ge=0, le=1e6, description="Rician K-factor (linear)")
    coherence: int | None = Field(
        None, ge=1, description="complex symbols per block (none: one block per transmission)"
    )
    csi: Literal["perfect", "ls"] = Field("perfect", description="the receiver's CSI")
    pilots: int = Field(1, ge=1, le=1024, description="LS pilots per block")
    equalizer: Literal["zf", "mmse"] = Field("zf", description="zero forcing or MMSE")


class BodyRefused(Exception):
    """Raised from the wrapped ``receive`` when the body is refused (answered by UploadLimit)."""

    status = 400


class BodyTooLarge(BodyRefused):
    """A streamed body passed the size limit (413)."""

    status = 413


class BodyTimeout(BodyRefused):
    """The body did not arrive within the body timeout (408)."""

    status = 408


class UploadLimit:
    """ASGI middleware: 413 for request bodies over ``max_bytes``, 408 for a body not
    received within ``body_timeout_s`` of the request's arrival.

    A declared Content-Length over the limit is refused before any of the body is read;
    a chunked body is counted as it streams and refused as soon as it passes the limit.
    The timeout covers the body only (the wait for a disconnect after it is not timed), so
    a client sending a few bytes a second (slowloris) holds one connection for at most
    ``body_timeout_s``; the event loop serves everyone else meanwhile.
    """

    def __init__(self, app, max_bytes: int, metrics: DeviceMetrics, body_timeout_s: float = 30.0):
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.body_timeout_s = body_timeout_s

    def _message(self, refused: type[BodyRefused]) -> dict[str, str]:
        if refused is BodyTimeout:
            return {
                "detail": f"request body not received within {self.body_timeout_s:g} s: send "
                "it at once (the limit is the device's --http-body-timeout-s)"
            }
        return {
            "detail": f"upload larger than the limit of {self.max_bytes} bytes: send a smaller "
            "image (the limit is the device's --max-upload-bytes)"
        }

    def _count(self, path: str, refused: type[BodyRefused]) -> None:
        if path == INFER_PATH:
            reason = "too_large" if refused is BodyTooLarge else "body_timeout"
            self.metrics.failures.labels(reason=reason).inc()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            self._count(path, BodyTooLarge)
            response = JSONResponse(self._message(BodyTooLarge), status_code=413)
            return await response(scope, receive, send)

        seen = 0
        body_done = False
        started = False
        deadline = time.monotonic() + self.body_timeout_s

        async def limited_receive():
            nonlocal seen, body_done
            if body_done:  # only a disconnect can come: not timed
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                raise BodyTimeout from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyRefused as exc:
            self._count(path, type(exc))
            if not started:
                response = JSONResponse(self._message(type(exc)), status_code=exc.status)
                await response(scope, receive, send)


class RequestMetrics:
    """ASGI middleware (outermost): every HTTP request into
    ``coinference_requests_total{service="device",method=<path>,code=<HTTP status>}`` and
    ``coinference_request_seconds``; paths outside :data:`METRIC_PATHS` count as "other"."""

    def __init__(self, app, metrics: DeviceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500  # unless a response starts

        async def tracking_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            path = scope["path"] if scope["path"] in METRIC_PATHS else "other"
            self.metrics.observe_request(path, str(status), time.perf_counter() - start)


def validation_message(exc: RequestValidationError) -> str:
    """Pydantic's errors as one line naming each field: 'beta: Input should be ...'."""
    parts = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        where = ".".join(loc) or "body"
        text = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            text = "unknown field"
        elif "input" in error and error.get("type") != "missing":
            text += f" (got {error['input']!r:.60})"
        parts.append(f"{where}: {text}")
    return "invalid request: " + "; ".join(parts)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


RECONSTRUCTION_SCHEMA = {
    "type": "object",
    "description": "only for an image (reconstruction) model: the image the edge decoded "
    "beside the one the device encoded (both at the model's size), with PSNR (dB, "
    "Hyper-AJSCC eq. 18, MAX = 1) and SSIM (scikit-image) between them",
    "properties": {
        "shape": {"type": "array", "items": {"type": "integer"},
                  "description": "[C, H, W] the model used (every input is converted to it)"},
        "psnr_db": {"type": "number"},
        "ssim": {"type": "number"},
        "sent_png_base64": {"type": "string", "description": "8-bit PNG, base64"},
        "received_png_base64": {"type": "string", "description": "8-bit PNG, base64"},
        "format": {"type": "string", "enum": ["png"]},
    },
}  # fmt: skip
CONSTELLATION_SCHEMA = {
    "type": "object",
    "description": "only with ?constellation=true: the symbols of this transmission, the "
    "transmitted ones beside the ones the edge received (device.reply.constellation_fields)",
    "properties": {
        "sent": {"type": "array", "items": {"type": "number"}},
        "received": {"type": "array", "items": {"type": "number"},
                     "description": "empty on a digital link (the coded bits travel instead)"},
        "pairing": {"type": "string"},
        "power": {"type": "string", "enum": ["peak", "average"]},
        "note": {"type": ["string", "null"]},
    },
}  # fmt: skip
INFER_OPENAPI = {
    "parameters": [
        {
            "name": "task",
            "in": "query",
            "required": False,
            "schema": {
                "type": "string",
                "enum": ["classification", "regression", "reconstruction"],
            },
            "description": "the reply the caller expects; 422 naming the model's task when "
            "this device's model does another",
        },
        {
            "name": "constellation",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean", "default": False},
            "description": "debug: the reply also carries constellation {sent, received}, the "
            "transmitted symbols beside those the edge received (consecutive real symbols as "
            "I/Q; received is empty on a digital link)",
        },
    ],  # fmt: skip
    "responses": {
        "200": {
            "description": "label and probabilities (classification), regression_value, or "
            "reconstruction (image model), with symbols/bits sent, knobs, CSI, latency_s",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "reconstruction": RECONSTRUCTION_SCHEMA,
                            "constellation": CONSTELLATION_SCHEMA,
                        },
                    }
                }
            },
        }
    },
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
    },
}


def build_service(settings: DeviceSettings, metrics: DeviceMetrics) -> DeviceService:
    """Load the model and connect (lazily) to the channel."""
    encoder = OnnxEncoder(
        settings.model, threads=settings.ort_threads, link_index=settings.link_index
    )
    knobs = default_knobs(
        encoder.manifest,
        beta=settings.beta,
        snr_mode=settings.snr_mode,
        snr_db=settings.snr_db,
        variable_length=settings.variable_length,
    )
    channel = ChannelClient(
        settings.channel,
        deadline_s=settings.deadline_s,
        credentials=settings.channel_credentials(),
        max_message_bytes=settings.max_message_bytes,
        max_batch=settings.transmit_batch,
        max_in_flight=settings.transmit_in_flight,
        on_call=metrics.transmit_batch_size.observe,
    )
    return DeviceService(
        encoder,
        channel,
        open_knob_store(encoder.manifest, knobs, settings.state_file),
        metrics,
        deadline_s=settings.deadline_s,
        compute_threads=settings.compute_threads,
    )


def create_app(settings: DeviceSettings, service: DeviceService | None = None) -> FastAPI:
    """The FastAPI app; the model is loaded here, before the server accepts requests."""
    metrics = service.metrics if service is not None else DeviceMetrics()
    service = service or build_service(settings, metrics)
    manifest = service.manifest

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await service.close()

    app = FastAPI(
        title="Hyper-VIB device",
        version="1",
        description=__doc__,
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(
        UploadLimit,
        max_bytes=settings.max_upload_bytes,
        metrics=metrics,
        body_timeout_s=settings.http_body_timeout_s,
    )
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: counts every answer
    admin_token = settings.admin_token_value()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError):
        return _error(422, validation_message(exc))

    def require_admin(what: str):
        """Dependency: 401 unless the request carries the admin token (when one is set)."""

        async def check(request: Request) -> str | None:
            token = bearer_token(request.headers.get("authorization"))
            problem = check_admin(what, token, admin_token)
            if problem is not None:
                raise HTTPException(401, problem, headers={"WWW-Authenticate": "Bearer"})
            return token

        return check

    def knobs_view() -> dict[str, Any]:
        return {
            **service.knobs.get().as_dict(),
            "beta_range": list(manifest.beta_range),
            "snr_db_range": list(manifest.snr_db_range),
            "snr_modes": list(SNR_MODES),
            "variable_length_supported": manifest.variable_length,
        }

    @app.post(INFER_PATH, openapi_extra=INFER_OPENAPI, summary="Classify or send one image")
    async def infer(request: Request):
        return await _infer(request)  # counted by RequestMetrics

    async def _infer(request: Request):
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        request_id = request.headers.get("x-request-id")  # optional, echoed as request_id
        expected = request.query_params.get("task")
        constellation = request.query_params.get("constellation", "false").lower()
        if constellation not in ("true", "false", "1", "0"):
            metrics.failures.labels(reason="bad_input").inc()
            return _error(422, f"constellation must be true or false, got {constellation[:20]!r}")
        constellation = constellation in ("true", "1")
        if expected is not None and expected != manifest.task:
            metrics.failures.labels(reason="bad_input").inc()
            return _error(
                422,
                f"task={expected[:40]!r} asked for, but this device's model does "
                f"{manifest.task} (GET /v1/model says which)",
            )
        try:
            if content_type == "multipart/form-data":
                form = await request.form(max_files=1, max_fields=4)
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise PreprocessError('multipart body needs a file field named "file"', 422)
                data = await upload.read()
                result = await service.infer_image(data, request_id, constellation)
            elif content_type == "application/json":
                body = await request.body()
                if not body:
                    raise PreprocessError('empty body: send JSON {"pixels": [...]}', 400)
                result = await service.infer_json(body, request_id, constellation)
            elif content_type.startswith("image/") or content_type in (
                "application/octet-stream",
                "",
            ):
                data = await request.body()
                result = await service.infer_image(data, request_id, constellation)
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
        except BodyRefused:
            raise  # answered 413 / 408 by UploadLimit
        except StarletteHTTPException as exc:  # the multipart parser: too many files/fields
            metrics.failures.labels(reason="bad_input").inc()
            return _error(
                exc.status_code,
                f"{exc.detail}: send one file in the multipart field 'file'",
            )
        except Exception as exc:  # a bug, not the caller's fault: no stack trace in the reply
            log.exception("inference failed")
            metrics.failures.labels(reason="internal").inc()
            return _error(500, f"internal error: {type(exc).__name__}")
        return JSONResponse(result)  # plain JSON types: no jsonable_encoder pass

    @app.get("/v1/knobs", summary="Current knobs and their allowed ranges")
    async def get_knobs():
        return knobs_view()

    @app.put("/v1/knobs", summary="Change knobs (partial update; 422 when out of range)")
    async def put_knobs(
        update: KnobsUpdate, _token: str | None = Depends(require_admin("PUT /v1/knobs"))
    ):
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
            return await service.channel_state()
        except ChannelError as exc:
            return _error(exc.status, str(exc))

    @app.put("/v1/channel/psnr", summary="Set the channel PSNR in dB (SetPsnr)")
    async def put_channel_psnr(
        update: PsnrUpdate, token: str | None = Depends(require_admin("PUT /v1/channel/psnr"))
    ):
        if not math.isfinite(update.psnr_db):
            return _error(422, f"psnr_db must be finite, got {update.psnr_db}")
        try:
            return await service.set_channel_psnr(update.psnr_db, token)
        except ChannelError as exc:
            return _error(exc.status, str(exc))

    @app.put("/v1/channel/link-mode", summary="Switch the channel's link (SetLinkMode)")
    async def put_channel_link_mode(
        update: LinkModeUpdate,
        token: str | None = Depends(require_admin("PUT /v1/channel/link-mode")),
    ):
        try:
            return await service.set_channel_link_mode(update.mode, token)
        except ChannelError as exc:
            return _error(exc.status, str(exc))

    @app.put("/v1/channel/fading", summary="Set the channel's block fading (SetFading)")
    async def put_channel_fading(
        update: FadingUpdate,
        token: str | None = Depends(require_admin("PUT /v1/channel/fading")),
    ):
        try:
            return await service.set_channel_fading(update.model_dump(), token)
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
            "n_links": manifest.n_links,
            "power": manifest.power,
            "entropy_coded": service.entropy.available,  # the digital links can carry it
            "link_index": service.encoder.link_index,
            "view": None if service.encoder.view is None else service.encoder.view.to_dict(),
        }

    @app.get("/healthz", summary="Process is up")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Model loaded, channel reachable, edge serving the same model")
    async def readyz():
        try:
            ready, report = await service.readiness()
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
