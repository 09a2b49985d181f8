"""Deadlines hop to hop: an outgoing call never outlives the caller that is waiting for it."""

from __future__ import annotations


def forward_timeout(own_s: float, remaining_s: float | None, floor_s: float = 0.001) -> float:
    """Deadline of an outgoing call, s: min(own configured deadline, caller's time left).

    ``remaining_s`` is None when the caller set no deadline; a spent budget gives
    ``floor_s``, so the call fails fast with DEADLINE_EXCEEDED instead of running unbounded.
    """
    if remaining_s is None:
        return own_s
    return min(own_s, max(remaining_s, floor_s))
