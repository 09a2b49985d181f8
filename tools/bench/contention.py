"""Is something outside the stack evicting the shared cache? A probe for the C=1 span.

:func:`cache_probe` re-reads a 4 MiB array (more than one core's 2 MiB L2 here, well within
the 32 MiB L3) right after sleeping 2 ms, and divides that time by the time of an
immediate re-read: about 1.0-1.1 when the array stayed in the cache while the probe slept,
1.5-1.8 here when other work evicted it. The bench runs it between the paired C=1 rounds, when
our stack is idle, so what it sees comes from outside (on a shared host: other VMs).

Why it matters: our C=1 span is a chain of three large processes (Pillow, ONNX Runtime,
PyTorch, gRPC) that each run cold after the others, and it slows far more than the small
echo chain when the cache is contended. In 2,000 paired rounds over 11 minutes on this 2-core
VM (``reports/bench/runs/2026-11-26/watch-c1.json``, a mostly quiet window), the device span
p50 was 1.70 ms in the rounds with the probe under 1.1 and 1.85 ms in those at 1.2-1.5
(correlation 0.39), while the echo chain moved from 0.82 to 0.83 ms; in a contended phase
earlier that morning a throw-away version of this loop saw 1.67 against 2.40 ms (docs/SERVING.md).

Units: the ratio is dimensionless; ``hot_s`` and ``after_sleep_s`` are seconds (medians).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

PROBE_MIB = 4
PROBE_SLEEP_S = 0.002
PROBE_REPS = 15
# rounds whose probe ratio is at most this count as quiet (1.0-1.1 when nothing evicts it)
QUIET_MAX = 1.2


@dataclass(frozen=True)
class ProbeResult:
    hot_s: float  # median time to re-read the array at once
    after_sleep_s: float  # median time to re-read it after PROBE_SLEEP_S asleep

    @property
    def ratio(self) -> float:
        """after_sleep_s / hot_s: 1.0 = nothing evicted the array while the probe slept."""
        return self.after_sleep_s / self.hot_s


def cache_probe(
    size_mib: float = PROBE_MIB, sleep_s: float = PROBE_SLEEP_S, reps: int = PROBE_REPS
) -> ProbeResult:
    """Time re-reads of a ``size_mib`` array: at once, and after ``sleep_s`` asleep
    (``reps`` of each, medians). About ``reps * sleep_s`` plus 2 * ``reps`` reads long."""
    if size_mib <= 0 or sleep_s < 0 or reps < 1:
        raise ValueError(f"size_mib > 0, sleep_s >= 0, reps >= 1; got {size_mib}, {sleep_s}, "
                         f"{reps}")  # fmt: skip
    array = np.ones(int(size_mib * 2**20) // 8)
    array.sum()  # fault the pages in and warm the cache
    hot, after_sleep = [], []
    for _ in range(reps):
        start = time.perf_counter()
        array.sum()
        hot.append(time.perf_counter() - start)
        time.sleep(sleep_s)
        start = time.perf_counter()
        array.sum()
        after_sleep.append(time.perf_counter() - start)
    return ProbeResult(float(np.median(hot)), float(np.median(after_sleep)))
