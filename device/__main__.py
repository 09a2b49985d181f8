"""``python -m device --model artifacts/quick --channel HOST:PORT --port 8080``.

Loads the model, logs the settings, serves HTTP with uvicorn until SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from fastapi import FastAPI

from device.app import create_app
from device.settings import DeviceSettings, parse_settings
from shared.service.loop import resolve_event_loop
from shared.service.startup import service_main

log = logging.getLogger("device")


def serve(settings: DeviceSettings, app: FastAPI) -> int:
    """Serve ``app`` with uvicorn until SIGINT/SIGTERM."""
    service = app.state.service
    manifest = service.manifest
    log.info(
        "model %s (%s, d=%d), knobs %s, channel %s, http://%s:%d",
        *(manifest.model_id, manifest.dataset, manifest.d, service.knobs.get().as_dict()),
        *(settings.channel, settings.host, settings.port),
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=settings.http_keepalive_s,
        loop=resolve_event_loop(settings.event_loop),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    return service_main(argv, parse_settings, log, serve, create_app)


if __name__ == "__main__":
    sys.exit(main())
