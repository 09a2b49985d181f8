"""Logging set-up shared by the three services (``logging``, never ``print``)."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def setup_logging(level: str = "info") -> None:
    """Configure the root logger once per process at ``level`` (debug, info, ...)."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, force=True)
