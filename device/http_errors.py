"""The device's errors as HTTP answers, mapped once for every route with FastAPI exception
handlers: a body that fails validation (422, one line naming each field), a bad image or
payload (:class:`~device.preprocess.PreprocessError`, its own status), knobs outside the
trained ranges (:class:`~device.knobs.KnobError`, 422), a channel or edge that refused or
could not be reached (:class:`~device.channel_client.ChannelError`, 401 / 422 / 502 / 503),
and a bug (:class:`InternalError`, 500 naming only the exception's type: no stack trace in
the reply). Every answer is ``{"detail": "<what to fix>"}``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from device.channel_client import ChannelError
from device.knobs import KnobError
from device.preprocess import PreprocessError


class InternalError(Exception):
    """A request failed on a bug, not on its input (500); ``kind`` names the exception."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def error_response(status: int, message: str) -> JSONResponse:
    """``{"detail": message}`` with HTTP ``status``."""
    return JSONResponse({"detail": message}, status_code=status)


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


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, validation_message(exc))


async def _bad_payload(_request: Request, exc: PreprocessError) -> JSONResponse:
    return error_response(exc.status, str(exc))


async def _bad_knobs(_request: Request, exc: KnobError) -> JSONResponse:
    return error_response(422, str(exc))


async def _channel_failed(_request: Request, exc: ChannelError) -> JSONResponse:
    return error_response(exc.status, str(exc))


async def _internal(_request: Request, exc: InternalError) -> JSONResponse:
    return error_response(500, f"internal error: {exc.kind}")


def add_error_handlers(app: FastAPI) -> None:
    """Install the handlers above on ``app``."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(PreprocessError, _bad_payload)
    app.add_exception_handler(KnobError, _bad_knobs)
    app.add_exception_handler(ChannelError, _channel_failed)
    app.add_exception_handler(InternalError, _internal)
