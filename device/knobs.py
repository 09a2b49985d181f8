"""Live knobs of the device: beta, the SNR the encoder assumes, variable length.

- ``beta`` (linear, > 0) must lie in the manifest's ``beta_range`` (Hyper-VIB: one model
  covers the range; outside it the behaviour is untrained, so it is refused, never clamped).
- ``snr_mode``: ``"feedback"`` uses the PSNR (dB) the channel reported in its last reply
  (before any reply: the channel's GetState); ``"manual"`` uses ``snr_db`` set by the user,
  which must lie in the manifest's ``snr_db_range``. In feedback mode a channel PSNR outside
  the trained range makes the encoder use the nearest trained bound, and the reply says so
  (:class:`SnrDecision` ``out_of_range``).
- ``variable_length``: send only the encoder's active prefix (VL-VFE); allowed only for
  models with ``manifest.variable_length``. Off = send all ``d`` symbols.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

from shared.manifest import Manifest

SNR_MODES = ("feedback", "manual")
DEFAULT_BETA = 1e-3  # used when it lies in the trained range and the manifest names none


class KnobError(ValueError):
    """A knob value a caller can fix (HTTP 422)."""


@dataclass(frozen=True)
class Knobs:
    beta: float  # linear, > 0
    snr_mode: str  # "feedback" | "manual"
    snr_db: float | None  # manual SNR in dB (used only in manual mode)
    variable_length: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SnrDecision:
    """Which SNR (dB) the encoder is told, and why."""

    snr_db: float  # the SNR the encoder assumes, dB (inside the trained range)
    source: str  # "manual" | "feedback"
    feedback_psnr_db: float | None  # the channel PSNR the decision was based on, dB
    out_of_range: bool  # feedback PSNR outside the trained range: nearest bound used
    note: str | None  # human-readable explanation when out_of_range


def _finite_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KnobError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise KnobError(f"{name} must be finite, got {value}")
    return value


def validate_knobs(knobs: Knobs, manifest: Manifest) -> Knobs:
    """Return ``knobs`` when valid for ``manifest``; raise KnobError with the reason otherwise."""
    beta = _finite_float("beta", knobs.beta)
    if beta <= 0:
        raise KnobError(f"beta must be > 0 (linear), got {beta:g}")
    try:
        manifest.check_beta(beta)
    except ValueError as exc:
        raise KnobError(str(exc)) from exc
    if knobs.snr_mode not in SNR_MODES:
        raise KnobError(f"snr_mode must be one of {SNR_MODES}, got {knobs.snr_mode!r}")
    if knobs.snr_db is not None:
        snr_db = _finite_float("snr_db", knobs.snr_db)
        try:
            manifest.check_snr_db(snr_db)
        except ValueError as exc:
            raise KnobError(str(exc)) from exc
    elif knobs.snr_mode == "manual":
        raise KnobError('snr_mode "manual" needs snr_db (dB) inside the trained range')
    if not isinstance(knobs.variable_length, bool):
        raise KnobError(f"variable_length must be true or false, got {knobs.variable_length!r}")
    if knobs.variable_length and not manifest.variable_length:
        raise KnobError(
            f"model {manifest.model_id} is fixed-length: variable_length can only be false"
        )
    return knobs


def default_knobs(
    manifest: Manifest,
    beta: float | None = None,
    snr_mode: str = "feedback",
    snr_db: float | None = None,
    variable_length: bool | None = None,
) -> Knobs:
    """Start-up knobs: given values, else the manifest's defaults, validated."""
    if beta is None:
        beta = manifest.raw.get("default_beta") if isinstance(manifest.raw, dict) else None
    if beta is None:
        lo, hi = manifest.beta_range
        beta = DEFAULT_BETA if lo <= DEFAULT_BETA <= hi else math.sqrt(lo * hi)
    if snr_db is None and snr_mode == "manual":
        snr_db = sum(manifest.snr_db_range) / 2
    if variable_length is None:
        variable_length = manifest.variable_length
    return validate_knobs(Knobs(float(beta), snr_mode, snr_db, variable_length), manifest)


class KnobStore:
    """Thread-safe holder of the current knobs; updates are validated as a whole."""

    FIELDS = ("beta", "snr_mode", "snr_db", "variable_length")

    def __init__(self, manifest: Manifest, knobs: Knobs):
        self._manifest = manifest
        self._knobs = validate_knobs(knobs, manifest)
        self._lock = threading.Lock()

    def get(self) -> Knobs:
        with self._lock:
            return self._knobs

    def update(self, changes: dict[str, Any]) -> Knobs:
        """Apply a partial update (only the given fields); all-or-nothing."""
        unknown = set(changes) - set(self.FIELDS)
        if unknown:
            raise KnobError(f"unknown knobs {sorted(unknown)}; allowed: {list(self.FIELDS)}")
        with self._lock:
            knobs = validate_knobs(replace(self._knobs, **changes), self._manifest)
            self._knobs = knobs
            return knobs


def decide_snr(knobs: Knobs, feedback_psnr_db: float | None, manifest: Manifest) -> SnrDecision:
    """The SNR (dB) the encoder assumes: manual value, or the channel's PSNR within range.

    In feedback mode a PSNR outside ``manifest.snr_db_range`` is replaced by the nearest
    trained bound and flagged, so the caller can report it.
    """
    if knobs.snr_mode == "manual":
        return SnrDecision(float(knobs.snr_db), "manual", feedback_psnr_db, False, None)
    if feedback_psnr_db is None:
        raise ValueError("feedback mode needs the channel's PSNR")
    lo, hi = manifest.snr_db_range
    used = min(max(float(feedback_psnr_db), lo), hi)
    if used == float(feedback_psnr_db):
        return SnrDecision(used, "feedback", feedback_psnr_db, False, None)
    note = (
        f"channel PSNR {feedback_psnr_db:.2f} dB is outside the trained SNR range "
        f"[{lo:g}, {hi:g}] dB; the encoder used the nearest trained bound {used:g} dB"
    )
    return SnrDecision(used, "feedback", feedback_psnr_db, True, note)
