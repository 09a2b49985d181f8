"""Dependencies of the device's routes: the service (``app.state.service``) and the admin
check (``app.state.admin_token``; none set: every caller may change knobs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import HTTPException

from device.service import DeviceService
from shared.service.security import bearer_token, check_admin


async def get_service(request: Request) -> DeviceService:
    """The app's :class:`DeviceService` (set by ``create_app``). A coroutine: FastAPI runs a
    plain ``def`` dependency in its thread pool, a thread hop on every request."""
    return request.app.state.service


Service = Annotated[DeviceService, Depends(get_service)]


async def admin_token(request: Request) -> str | None:
    """Dependency of the changing routes: 401 unless the request carries the admin token
    (when one is set), naming the route (``PUT /v1/knobs``); returns the caller's token,
    passed on to the channel."""
    what = f"{request.method} {request.scope['route'].path}"
    token = bearer_token(request.headers.get("authorization"))
    problem = check_admin(what, token, request.app.state.admin_token)
    if problem is not None:
        raise HTTPException(401, problem, headers={"WWW-Authenticate": "Bearer"})
    return token


AdminToken = Annotated[str | None, Depends(admin_token)]
