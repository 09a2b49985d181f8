"""PSNR profiles of the channel proxy: fixed, random walk, or a CSV trace.

All values are PSNR in dB (VL-VFE: PSNR = 10·log10(1/sigma^2), peak power 1). A profile
answers ``current(now)`` for a monotonic time ``now`` in seconds (time.monotonic).
"""

from __future__ import annotations

import csv
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PSNR_MIN_DB = -10.0
PSNR_MAX_DB = 60.0
PROFILE_KINDS = ("fixed", "random-walk", "trace")


def check_psnr_db(psnr_db: float, what: str = "psnr_db") -> float:
    """Return psnr_db as float; raise ValueError unless finite and in [-10, 60] dB."""
    try:
        value = float(psnr_db)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a number in dB, got {psnr_db!r}") from exc
    if not math.isfinite(value) or not PSNR_MIN_DB <= value <= PSNR_MAX_DB:
        raise ValueError(
            f"{what}={psnr_db} dB must be finite and within [{PSNR_MIN_DB:g}, {PSNR_MAX_DB:g}] dB"
        )
    return value


class FixedProfile:
    """Constant PSNR (dB)."""

    kind = "fixed"

    def __init__(self, psnr_db: float) -> None:
        self.psnr_db = check_psnr_db(psnr_db)

    def current(self, now: float | None = None) -> float:
        return self.psnr_db

    def describe(self) -> str:
        return f"fixed {self.psnr_db:g} dB"


class RandomWalkProfile:
    """PSNR steps by ±step_db every period_s seconds, reflected into [low_db, high_db].

    Starts at the middle of the range. Deterministic for a given seed; steps are applied
    lazily, so the walk costs nothing while no one asks.
    """

    kind = "random-walk"

    def __init__(
        self,
        low_db: float,
        high_db: float,
        step_db: float,
        period_s: float,
        seed: int | None = None,
        start: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.low_db = check_psnr_db(low_db, "low_db")
        self.high_db = check_psnr_db(high_db, "high_db")
        if self.high_db <= self.low_db:
            raise ValueError(f"random walk needs low_db < high_db, got {low_db} >= {high_db}")
        if not (math.isfinite(step_db) and 0 < step_db <= self.high_db - self.low_db):
            span = self.high_db - self.low_db
            raise ValueError(f"step_db={step_db} must be > 0 and at most the range {span:g} dB")
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"period_s={period_s} must be a positive number of seconds")
        self.step_db = float(step_db)
        self.period_s = float(period_s)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._value = 0.5 * (self.low_db + self.high_db)
        self._t0 = clock() if start is None else start
        self._steps_done = 0
        self._lock = threading.Lock()

    def current(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            due = int((now - self._t0) // self.period_s)
            while self._steps_done < due:
                value = self._value + self.step_db * (1 if self._rng.random() < 0.5 else -1)
                if value > self.high_db:
                    value = 2 * self.high_db - value
                if value < self.low_db:
                    value = 2 * self.low_db - value
                self._value = value
                self._steps_done += 1
            return self._value

    def describe(self) -> str:
        return (
            f"random walk {self.low_db:g}..{self.high_db:g} dB, step {self.step_db:g} dB "
            f"every {self.period_s:g} s"
        )


@dataclass(frozen=True)
class TracePoint:
    time_s: float
    psnr_db: float


class TraceProfile:
    """Piecewise-constant PSNR from (time_s, psnr_db) rows, time counted from start.

    Before the first row the first value holds; after the last row the last value holds,
    or, with ``loop``, the trace restarts at the last row's time (its length).
    """

    kind = "trace"

    def __init__(
        self,
        points: Sequence[TracePoint],
        loop: bool = False,
        start: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        source: str = "inline",
    ) -> None:
        self.points = validate_trace(points, source)
        self.loop = bool(loop)
        if self.loop and self.points[-1].time_s <= 0:
            raise ValueError(f"{source}: a looping trace needs its last time_s > 0")
        self.source = source
        self._times = np.array([p.time_s for p in self.points])
        self._t0 = clock() if start is None else start

    def current(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        elapsed = max(0.0, now - self._t0)
        if self.loop:
            elapsed = elapsed % self.points[-1].time_s
        index = max(0, int(np.searchsorted(self._times, elapsed, side="right")) - 1)
        return self.points[index].psnr_db

    def describe(self) -> str:
        span = self.points[-1].time_s
        loop = ", loop" if self.loop else ""
        return f"trace {self.source} ({len(self.points)} rows, {span:g} s{loop})"


def validate_trace(points: Sequence[TracePoint], source: str = "trace") -> list[TracePoint]:
    """Check rows: at least one, finite, time_s >= 0 and strictly increasing, PSNR in range."""
    points = list(points)
    if not points:
        raise ValueError(f"{source}: trace has no rows")
    previous = -math.inf
    for row, point in enumerate(points, start=1):
        _check_point(point, previous, f"{source} row {row}")
        previous = point.time_s
    return points


def _check_point(point: TracePoint, previous_time_s: float, where: str) -> None:
    if not (math.isfinite(point.time_s) and point.time_s >= 0):
        raise ValueError(f"{where}: time_s={point.time_s} must be finite and >= 0")
    if point.time_s <= previous_time_s:
        raise ValueError(
            f"{where}: time_s={point.time_s} must be greater than the previous {previous_time_s}"
        )
    check_psnr_db(point.psnr_db, f"{where}: psnr_db")


def parse_trace_csv(path: str | Path) -> list[TracePoint]:
    """Read ``time_s,psnr_db`` rows (header optional, '#' comments allowed); validate them."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"trace file {path} does not exist")
    points: list[TracePoint] = []
    with path.open(newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            cells = [cell.strip() for cell in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if len(cells) != 2:
                raise ValueError(f"{path}:{line_no}: expected 2 columns time_s,psnr_db, got {row}")
            if not points and cells == ["time_s", "psnr_db"]:
                continue
            try:
                time_s, psnr_db = float(cells[0]), float(cells[1])
            except ValueError:
                raise ValueError(
                    f"{path}:{line_no}: time_s and psnr_db must be numbers, got {row}"
                ) from None
            point = TracePoint(time_s, psnr_db)
            _check_point(point, points[-1].time_s if points else -math.inf, f"{path}:{line_no}")
            points.append(point)
    return validate_trace(points, str(path))
