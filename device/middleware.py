"""The device's ASGI middleware: the upload limit and body timeout (:class:`UploadLimit`),
and the request counter (:class:`RequestMetrics`). ``device/app.py`` installs both,
``RequestMetrics`` outermost so it counts every answer, the upload limit's too."""

from __future__ import annotations

import asyncio
import time

from fastapi.responses import JSONResponse

from device.metrics import DeviceMetrics

INFER_PATH = "/v1/infer"
# request counter labels: these paths by name, everything else as "other"
METRIC_PATHS = frozenset(
    (INFER_PATH, "/v1/knobs", "/v1/channel", "/v1/channel/psnr", "/v1/channel/link-mode",
     "/v1/channel/fading", "/v1/model", "/v1/samples/random", "/healthz", "/readyz",
     "/metrics", "/")
)  # fmt: skip


class BodyRefused(Exception):
    """Raised from the wrapped ``receive`` when the body is refused (answered by UploadLimit
    with ``status``; an inference counted as failed for ``reason``)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


TOO_LARGE = (413, "too_large")  # a declared or streamed body over the size limit
BODY_TIMEOUT = (408, "body_timeout")  # the body did not arrive within the body timeout


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

    def _message(self, refused: BodyRefused) -> dict[str, str]:
        if refused.status == BODY_TIMEOUT[0]:
            return {
                "detail": f"request body not received within {self.body_timeout_s:g} s: send "
                "it at once (the limit is the device's --http-body-timeout-s)"
            }
        return {
            "detail": f"upload larger than the limit of {self.max_bytes} bytes: send a smaller "
            "image (the limit is the device's --max-upload-bytes)"
        }

    def _count(self, path: str, refused: BodyRefused) -> None:
        if path == INFER_PATH:
            self.metrics.failures.labels(reason=refused.reason).inc()

    async def _refuse(self, path: str, refused: BodyRefused, scope, receive, send) -> None:
        """Count ``refused`` and answer it."""
        self._count(path, refused)
        response = JSONResponse(self._message(refused), status_code=refused.status)
        await response(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(path, BodyRefused(*TOO_LARGE), scope, receive, send)

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
                raise BodyRefused(*BODY_TIMEOUT) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise BodyRefused(*TOO_LARGE)
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyRefused as refused:
            if started:  # the answer is on its way: only count the refusal
                self._count(path, refused)
            else:
                await self._refuse(path, refused, scope, receive, send)


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
