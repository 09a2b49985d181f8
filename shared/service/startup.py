"""The start every service's ``main`` shares (device, channel, edge).

:func:`service_main` parses the settings (a bad flag or variable exits with status 2 and one
line, :mod:`shared.service.settings`), sets up logging at their level, logs them, loads what
the service needs before it serves (its model, its app) and then serves. A model that cannot
be loaded, or a value only the load can refuse, is one logged line and exit status 2, never
a traceback.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from shared.manifest import ManifestError
from shared.service.logs import setup_logging
from shared.service.loop import run as run_event_loop
from shared.service.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
Loaded = TypeVar("Loaded")

# what a load raises for a model or a value it cannot use: exit status 2, one logged line
LOAD_ERRORS = (ManifestError, ValueError)


def _nothing(settings: ServiceSettings) -> None:
    return None


def service_main(
    argv: Sequence[str] | None,
    parse_settings: Callable[[Sequence[str] | None], S],
    log: logging.Logger,
    serve: Callable[[S, Any], int | Coroutine[Any, Any, int]],
    load: Callable[[S], Loaded] = _nothing,
    failure: str = "cannot start",
) -> int:
    """Settings from ``argv``, logging at their level, the settings logged; then
    ``load(settings)``, where :data:`LOAD_ERRORS` are logged as ``failure: <why>`` and exit
    with status 2; then the exit status of ``serve(settings, loaded)``, which is either the
    status or a coroutine that returns it: run in the event loop the settings name."""
    settings = parse_settings(argv)
    setup_logging(settings.log_level)
    log.info("%s", settings.describe())
    try:
        loaded = load(settings)
    except LOAD_ERRORS as exc:
        log.error("%s: %s", failure, exc)
        return 2
    status = serve(settings, loaded)
    if inspect.iscoroutine(status):
        return run_event_loop(status, settings.event_loop)
    return status
