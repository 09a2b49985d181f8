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

from contextlib import asynccontextmanager

from fastapi import FastAPI

from device.channel_client import ChannelClient
from device.encoder import OnnxEncoder
from device.http_errors import add_error_handlers
from device.knobs import default_knobs, open_knob_store
from device.metrics import DeviceMetrics
from device.middleware import RequestMetrics, UploadLimit
from device.routes import channel, health, infer, knobs, model
from device.service import DeviceService
from device.settings import DeviceSettings
from device.web import add_web_routes


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
    """The FastAPI app; the model is loaded here, before the server accepts requests.

    Assembly only: the routers of :mod:`device.routes` (the service through ``Depends``),
    the error handlers of :mod:`device.http_errors`, the middleware of
    :mod:`device.middleware`, and the web page (:mod:`device.web`)."""
    metrics = service.metrics if service is not None else DeviceMetrics()
    service = service or build_service(settings, metrics)

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
    app.state.admin_token = settings.admin_token_value()
    app.add_middleware(
        UploadLimit,
        max_bytes=settings.max_upload_bytes,
        metrics=metrics,
        body_timeout_s=settings.http_body_timeout_s,
    )
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: counts every answer
    add_error_handlers(app)
    for router in (infer.router, knobs.router, channel.router, model.router, health.router):
        app.include_router(router)
    add_web_routes(app, settings.data_dir, service.manifest.class_names)  # GET /, samples
    app.include_router(health.metrics_router)
    return app
