"""The simulated devices: each its own Poisson arrival rate, β and PSNR random walk.

Rates are drawn uniformly in [0.5, 1.5] × the mean rate (per device, requests/s), so the
offered load is N × rate on average. β is log-uniform over the model's trained range, snapped
to ``beta_levels`` log-spaced values (the encodings are precomputed per level). A device's
link PSNR (dB) starts uniform in [low_db, high_db] and takes a ±step_db step every period_s,
reflected at the bounds (the channel profile's random walk, one per device).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PsnrWalk:
    """A per-device PSNR random walk (dB), advanced lazily to the time asked for."""

    psnr_db: float
    low_db: float
    high_db: float
    step_db: float
    period_s: float
    rng: np.random.Generator
    steps_taken: int = 0

    def at(self, time_s: float) -> float:
        """The PSNR at ``time_s`` (s since the start; never earlier than the last call)."""
        due = int(time_s // self.period_s)
        while self.steps_taken < due:
            value = self.psnr_db + self.step_db * self.rng.choice((-1.0, 1.0))
            if value > self.high_db:
                value = 2 * self.high_db - value
            if value < self.low_db:
                value = 2 * self.low_db - value
            self.psnr_db = float(min(max(value, self.low_db), self.high_db))
            self.steps_taken += 1
        return self.psnr_db


@dataclass
class Device:
    device_id: int
    rate_per_s: float
    beta: float  # linear, one of the precomputed levels
    walk: PsnrWalk = field(repr=False)


def beta_levels(beta_range: tuple[float, float], n: int) -> np.ndarray:
    """``n`` log-spaced β values spanning the trained range (linear)."""
    if n < 1:
        raise ValueError(f"beta levels must be >= 1, got {n}")
    low, high = np.log10(beta_range[0]), np.log10(beta_range[1])
    return 10 ** np.linspace(low, high, n) if n > 1 else np.array([10 ** ((low + high) / 2)])


def make_devices(
    n: int,
    rate_per_s: float,
    betas: np.ndarray,
    low_db: float = 5.0,
    high_db: float = 25.0,
    step_db: float = 1.0,
    period_s: float = 1.0,
    seed: int = 0,
) -> list[Device]:
    """``n`` devices with mean arrival rate ``rate_per_s`` each (requests/s)."""
    if n < 1:
        raise ValueError(f"devices must be >= 1, got {n}")
    if rate_per_s <= 0:
        raise ValueError(f"rate must be > 0 requests/s per device, got {rate_per_s}")
    if not low_db <= high_db:
        raise ValueError(f"PSNR walk bounds: low {low_db} dB > high {high_db} dB")
    rng = np.random.default_rng(seed)
    devices = []
    for k in range(n):
        walk = PsnrWalk(
            float(rng.uniform(low_db, high_db)), low_db, high_db, step_db, period_s,
            np.random.default_rng([seed, k]),
        )  # fmt: skip
        rate = float(rate_per_s * rng.uniform(0.5, 1.5))
        devices.append(Device(k, rate, float(rng.choice(betas)), walk))
    return devices


def arrivals(
    devices: list[Device], duration_s: float, seed: int = 0
) -> Iterator[tuple[float, int]]:
    """(time_s, device index) of every arrival in [0, duration_s), in time order: each device
    an independent Poisson process at its own rate (open loop: nothing waits for answers)."""
    rng = np.random.default_rng([seed, 1])
    heap = [(float(rng.exponential(1 / d.rate_per_s)), i) for i, d in enumerate(devices)]
    heapq.heapify(heap)
    while heap and heap[0][0] < duration_s:
        time_s, i = heapq.heappop(heap)
        yield time_s, i
        heapq.heappush(heap, (time_s + float(rng.exponential(1 / devices[i].rate_per_s)), i))
