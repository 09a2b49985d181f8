"""Checks of a component's numeric arguments, each failure a ValueError of one shape:
``<name> must be >= <minimum>[ <unit>], got <value>`` (``>`` for :func:`check_positive`)."""

from __future__ import annotations


def _bound(name: str, relation: str, bound: float, unit: str, value: float) -> ValueError:
    unit = f" {unit}" if unit else ""
    return ValueError(f"{name} must be {relation} {bound}{unit}, got {value}")


def check_at_least(name: str, value: float, minimum: float, unit: str = "") -> None:
    """ValueError unless ``value`` >= ``minimum``."""
    if value < minimum:
        raise _bound(name, ">=", minimum, unit, value)


def check_positive(name: str, value: float, unit: str = "") -> None:
    """ValueError unless ``value`` > 0."""
    if value <= 0:
        raise _bound(name, ">", 0, unit, value)
