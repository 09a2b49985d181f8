"""The channel through the device: ``GET /v1/channel`` (GetState) and, with the admin token
when one is set (passed on to the channel, which checks its own), ``PUT /v1/channel/psnr``
(SetPsnr), ``PUT /v1/channel/link-mode`` (SetLinkMode: analog, ideal, ldpc-qam) and
``PUT /v1/channel/fading`` (SetFading). A failed channel call is answered by
:mod:`device.http_errors` with its status."""

from __future__ import annotations

import math
from typing import Literal

from fastapi import APIRouter
from fastapi.exceptions import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from device.routes.deps import AdminToken, Service

router = APIRouter()


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


@router.get("/v1/channel", summary="The channel's state (GetState)")
async def get_channel(service: Service):
    return await service.channel_state()


@router.put("/v1/channel/psnr", summary="Set the channel PSNR in dB (SetPsnr)")
async def put_channel_psnr(update: PsnrUpdate, service: Service, token: AdminToken):
    if not math.isfinite(update.psnr_db):
        raise HTTPException(422, f"psnr_db must be finite, got {update.psnr_db}")
    return await service.set_channel_psnr(update.psnr_db, token)


@router.put("/v1/channel/link-mode", summary="Switch the channel's link (SetLinkMode)")
async def put_channel_link_mode(update: LinkModeUpdate, service: Service, token: AdminToken):
    return await service.set_channel_link_mode(update.mode, token)


@router.put("/v1/channel/fading", summary="Set the channel's block fading (SetFading)")
async def put_channel_fading(update: FadingUpdate, service: Service, token: AdminToken):
    return await service.set_channel_fading(update.model_dump(), token)
