"""``python -m device --model artifacts/quick --channel HOST:PORT --port 8080``.

Loads the model, prints the settings, serves HTTP with uvicorn until SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from device.app import create_app
from device.settings import settings_from_args
from shared.manifest import ManifestError


def main(argv: list[str] | None = None) -> int:
    settings = settings_from_args(argv)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    print(settings.describe(), flush=True)
    try:
        app = create_app(settings)
    except (ManifestError, ValueError) as exc:
        print(f"device: cannot start: {exc}", file=sys.stderr, flush=True)
        return 2
    service = app.state.service
    knobs = service.knobs.get()
    print(
        f"device: model {service.manifest.model_id} ({service.manifest.dataset}, d="
        f"{service.manifest.d}), knobs {knobs.as_dict()}, channel {settings.channel}, "
        f"http://{settings.host}:{settings.port}",
        flush=True,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
