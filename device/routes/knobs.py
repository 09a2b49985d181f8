"""``GET /v1/knobs`` and ``PUT /v1/knobs`` (a partial update; the admin token when one is
set): β, the SNR mode and manual SNR, variable length (:mod:`device.knobs`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from device.knobs import SNR_MODES
from device.routes.deps import AdminToken, Service
from device.service import DeviceService

router = APIRouter()


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


def knobs_view(service: DeviceService) -> dict[str, Any]:
    """The knobs with the ranges and modes the model allows."""
    manifest = service.manifest
    return {
        **service.knobs.get().as_dict(),
        "beta_range": list(manifest.beta_range),
        "snr_db_range": list(manifest.snr_db_range),
        "snr_modes": list(SNR_MODES),
        "variable_length_supported": manifest.variable_length,
    }


@router.get("/v1/knobs", summary="Current knobs and their allowed ranges")
async def get_knobs(service: Service):
    return knobs_view(service)


@router.put("/v1/knobs", summary="Change knobs (partial update; 422 when out of range)")
async def put_knobs(update: KnobsUpdate, service: Service, _token: AdminToken):
    changes = {name: getattr(update, name) for name in update.model_fields_set}
    knobs = service.knobs.update(changes)  # KnobError: 422 (device.http_errors)
    service.metrics.beta.set(knobs.beta)
    return knobs_view(service)
