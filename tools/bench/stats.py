"""Statistics of one sweep level: percentiles and the row written to results.json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PERCENTILES = (50, 90, 95, 99)
# stage keys of the device reply's ``latency_s`` (seconds), summarised per level
STAGE_KEYS = (
    "preprocess", "encode", "device_to_channel", "channel", "channel_to_edge", "edge_queue",
    "decode", "edge_total", "channel_total", "rpc", "total",
)  # fmt: skip


def percentiles(values: Sequence[float | None]) -> dict[str, float | None]:
    """p50/p90/p95/p99 in seconds (None when empty)."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if not arr.size:
        return {f"p{p}": None for p in PERCENTILES}
    values = np.percentile(arr, PERCENTILES)
    return {f"p{p}": float(v) for p, v in zip(PERCENTILES, values, strict=True)}


def summarise_level(
    kind: str, concurrency: int, duration_s: float, records: list[dict], generator: str = ""
) -> dict[str, Any]:
    """One sweep level: throughput, latency percentiles (total and per stage), accuracy.

    ``records`` hold ``ok``, ``latency_s`` (s) and optionally ``correct``, ``stages``
    (the reply's ``latency_s``), ``symbols`` and ``bits``.
    """
    ok = [r for r in records if r["ok"]]
    judged = [r["correct"] for r in ok if r.get("correct") is not None]
    row: dict[str, Any] = {
        "kind": kind,
        "concurrency": concurrency,
        "duration_s": duration_s,
        "requests": len(records),
        "errors": len(records) - len(ok),
        "throughput_per_s": len(ok) / duration_s if duration_s > 0 else 0.0,
        "latency_s": percentiles([r["latency_s"] for r in ok]),
        "accuracy": float(np.mean(judged)) if judged else None,
        "generator": generator,
    }
    if ok and "stages" in ok[0]:
        row.update(stage_summary(ok))
    return row


def stage_summary(ok_records: list[dict]) -> dict[str, Any]:
    """Per-stage percentiles and mean symbols/bits of successful device replies."""
    return {
        "stages_s": {
            key: percentiles([r["stages"].get(key) for r in ok_records]) for key in STAGE_KEYS
        },
        "mean_symbols": float(np.mean([r["symbols"] for r in ok_records])),
        "mean_bits": float(np.mean([r["bits"] for r in ok_records])),
    }
