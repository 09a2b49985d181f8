"""``GET /healthz`` (the process is up), ``GET /readyz`` (model loaded, channel reachable,
the edge behind it serving this device's model id: 503 otherwise, naming both ids on a
mismatch) and, on its own router, ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from device.channel_client import ChannelError
from device.routes.deps import Service

router = APIRouter()
metrics_router = APIRouter()


@router.get("/healthz", summary="Process is up")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz", summary="Model loaded, channel reachable, edge serving the same model")
async def readyz(service: Service):
    try:
        ready, report = await service.readiness()
    except ChannelError as exc:
        raise HTTPException(503, f"not ready: {exc}") from None
    if not ready:
        return JSONResponse({**report, "detail": f"not ready: {report['detail']}"}, 503)
    return report


@metrics_router.get("/metrics", summary="Prometheus metrics")
async def prometheus_metrics(service: Service):
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
