"""``POST /v1/infer``: one image in (multipart field ``file``, a raw ``image/*`` or
``application/octet-stream`` body, or JSON ``{"pixels": ...}``), the edge's answer out
(see the app's description in ``device/app.py``). ``?task=`` names the reply the caller
expects; ``?constellation=true`` adds the sent and received symbols
(:func:`device.reply.constellation_fields`). Each failure is counted by reason
(``coinference_device_failures_total``) and answered by :mod:`device.http_errors`.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from device.channel_client import ChannelError
from device.http_errors import InternalError
from device.knobs import KnobError
from device.middleware import INFER_PATH, BodyRefused
from device.preprocess import PreprocessError
from device.routes.deps import Service
from device.service import DeviceService

log = logging.getLogger("device")
router = APIRouter()
FLAGS = {"true": True, "1": True, "false": False, "0": False}

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


def failure_reason(exc: Exception) -> str:
    """The ``reason`` label a failed inference is counted under."""
    if isinstance(exc, PreprocessError):
        return "too_large" if exc.status == 413 else "bad_input"
    if isinstance(exc, KnobError):
        return "bad_knobs"
    if isinstance(exc, ChannelError):
        return "channel_unavailable" if exc.status == 503 else "channel_error"
    return "internal"


@router.post(INFER_PATH, openapi_extra=INFER_OPENAPI, summary="Classify or send one image")
async def infer(request: Request, service: Service):
    try:
        result = await _infer(request, service)
    except BodyRefused:
        raise  # answered 413 / 408 by UploadLimit
    except (PreprocessError, KnobError, ChannelError) as exc:
        service.metrics.failures.labels(reason=failure_reason(exc)).inc()
        raise
    except Exception as exc:  # a bug, not the caller's fault: no stack trace in the reply
        log.exception("inference failed")
        service.metrics.failures.labels(reason="internal").inc()
        raise InternalError(type(exc).__name__) from exc
    return JSONResponse(result)  # plain JSON types: no jsonable_encoder pass


async def _infer(request: Request, service: DeviceService) -> dict:
    """The query checked, the body read by its Content-Type, the service's answer."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    request_id = request.headers.get("x-request-id")  # optional, echoed as request_id
    task = service.manifest.task
    expected = request.query_params.get("task")
    if expected is not None and expected != task:
        raise PreprocessError(
            f"task={expected[:40]!r} asked for, but this device's model does "
            f"{task} (GET /v1/model says which)",
            422,
        )
    flag = request.query_params.get("constellation", "false").lower()
    if flag not in FLAGS:
        raise PreprocessError(f"constellation must be true or false, got {flag[:20]!r}", 422)
    constellation = FLAGS[flag]
    if content_type == "multipart/form-data":
        return await service.infer_image(await _upload(request), request_id, constellation)
    if content_type == "application/json":
        body = await request.body()
        if not body:
            raise PreprocessError('empty body: send JSON {"pixels": [...]}', 400)
        return await service.infer_json(body, request_id, constellation)
    if content_type.startswith("image/") or content_type in ("application/octet-stream", ""):
        return await service.infer_image(await request.body(), request_id, constellation)
    raise PreprocessError(
        f"unsupported Content-Type {content_type!r}: use multipart/form-data "
        "(field 'file'), image/*, or application/json",
        415,
    )


async def _upload(request: Request) -> bytes:
    """The bytes of the multipart field ``file`` (one file, a few fields at most)."""
    try:
        form = await request.form(max_files=1, max_fields=4)
    except StarletteHTTPException as exc:  # the multipart parser: too many files/fields
        raise PreprocessError(
            f"{exc.detail}: send one file in the multipart field 'file'", exc.status_code
        ) from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise PreprocessError('multipart body needs a file field named "file"', 422)
    return await upload.read()
