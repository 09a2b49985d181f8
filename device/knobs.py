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

Knobs set at run time survive a restart when the device has a state file
(``--state-file PATH`` / ``DEVICE_STATE_FILE``, :class:`KnobStateFile`). Its format, one
JSON object written atomically (temp file in the same folder, fsync, ``os.replace``) on
every change::

    {"format": "coinference-device-knobs/1",
     "model_id": "<manifest model_id the knobs were set for>",
     "knobs": {"beta": 0.001, "snr_mode": "feedback", "snr_db": null,
               "variable_length": false}}

All four knobs must be present with the types above (``beta``/``snr_db`` JSON numbers,
``snr_db`` may be null outside manual mode), no other keys, and the values must be valid
for the model being loaded. A file that fails any check is refused at start-up as a whole
(:class:`KnobStateError`, the device exits with code 2), never half-read; a missing file
means a first start: the start-up knobs are used and written to it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from shared.manifest import Manifest, start_beta

SNR_MODES = ("feedback", "manual")


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
        beta = manifest.default_beta
    if beta is None:  # an older manifest without one
        beta = start_beta(manifest.beta_range)
    if snr_db is None and snr_mode == "manual":
        snr_db = sum(manifest.snr_db_range) / 2
    if variable_length is None:
        variable_length = manifest.variable_length
    return validate_knobs(Knobs(float(beta), snr_mode, snr_db, variable_length), manifest)


class KnobStore:
    """Thread-safe holder of the current knobs; updates are validated as a whole.

    ``on_change(knobs)`` (e.g. :meth:`KnobStateFile.save`) runs under the lock before an
    update takes effect, so saved states follow the order of updates; if it raises, the
    update is not applied.
    """

    FIELDS = ("beta", "snr_mode", "snr_db", "variable_length")

    def __init__(
        self,
        manifest: Manifest,
        knobs: Knobs,
        on_change: Callable[[Knobs], None] | None = None,
    ):
        self._manifest = manifest
        self._knobs = validate_knobs(knobs, manifest)
        self._lock = threading.Lock()
        self._on_change = on_change

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
            if self._on_change is not None:
                self._on_change(knobs)
            self._knobs = knobs
            return knobs


STATE_FORMAT = "coinference-device-knobs/1"


class KnobStateError(ValueError):
    """The state file cannot be used (unreadable, malformed, or for another model)."""


def _state_type(name: str, value: Any, expected: str) -> None:
    ok = {
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "number or null": value is None
        or (isinstance(value, int | float) and not isinstance(value, bool)),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
    }[expected]
    if not ok:
        raise KnobStateError(f"knobs.{name} must be a JSON {expected}, got {value!r}")


class KnobStateFile:
    """The device's knob state on disk (format in the module docstring)."""

    TYPES = {"beta": "number", "snr_mode": "string", "snr_db": "number or null",
             "variable_length": "boolean"}  # fmt: skip

    def __init__(self, path: str | Path, manifest: Manifest):
        self.path = Path(path)
        self.manifest = manifest

    def load(self) -> Knobs | None:
        """The saved knobs, validated for this model; None when the file does not exist.
        Raises KnobStateError naming the file and the first problem otherwise."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise KnobStateError(f"state file {self.path}: cannot read it: {exc}") from None
        try:
            return self._parse(text)
        except KnobStateError as exc:
            raise KnobStateError(f"state file {self.path}: {exc}") from None

    def _parse(self, text: str) -> Knobs:
        try:
            state = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KnobStateError(f"not valid JSON ({exc})") from None
        if not isinstance(state, dict) or set(state) != {"format", "model_id", "knobs"}:
            raise KnobStateError(
                'expected a JSON object with exactly "format", "model_id" and "knobs"'
            )
        if state["format"] != STATE_FORMAT:
            raise KnobStateError(f"format must be {STATE_FORMAT!r}, got {state['format']!r}")
        if state["model_id"] != self.manifest.model_id:
            raise KnobStateError(
                f"it holds knobs for model {state['model_id']!r}, this device runs "
                f"{self.manifest.model_id!r} (delete the file to start from the defaults)"
            )
        knobs = state["knobs"]
        if not isinstance(knobs, dict) or set(knobs) != set(self.TYPES):
            raise KnobStateError(f"knobs must be a JSON object with exactly {list(self.TYPES)}")
        for name, expected in self.TYPES.items():
            _state_type(name, knobs[name], expected)
        try:
            snr_db = None if knobs["snr_db"] is None else float(knobs["snr_db"])
            values = {**knobs, "beta": float(knobs["beta"]), "snr_db": snr_db}
            return validate_knobs(Knobs(**values), self.manifest)
        except KnobError as exc:
            raise KnobStateError(f"invalid knobs for this model: {exc}") from None

    def save(self, knobs: Knobs) -> None:
        """Write ``knobs`` atomically: a temp file in the same folder, fsync, os.replace."""
        state = {"format": STATE_FORMAT, "model_id": self.manifest.model_id,
                 "knobs": knobs.as_dict()}  # fmt: skip
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(state, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


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


def open_knob_store(
    manifest: Manifest, start_knobs: Knobs, state_file: str | Path | None = None
) -> KnobStore:
    """The device's KnobStore. With ``state_file``: the saved knobs when the file exists
    (KnobStateError when it is unusable), else ``start_knobs``, written to it at once; every
    later change is saved before it takes effect."""
    if state_file is None:
        return KnobStore(manifest, start_knobs)
    state = KnobStateFile(state_file, manifest)
    knobs = state.load()
    if knobs is None:
        knobs = validate_knobs(start_knobs, manifest)
        state.save(knobs)
    return KnobStore(manifest, knobs, on_change=state.save)
