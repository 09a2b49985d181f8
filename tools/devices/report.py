"""Summaries of a many-devices run: overall, per device, per replica, per stage."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from tools.devices.driver import STAGES, Record
from tools.devices.population import Device


def quantile(values, q: float) -> float | None:
    return float(np.quantile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def summarise(records: list[Record], run_s: float) -> dict:
    """Throughput (answers/s over the run), latency p50/p99 of the answered requests (s, from
    the scheduled arrival), accuracy, error counts, per-replica counts and per-stage times."""
    ok = [r for r in records if r.code == "OK"]
    latencies = [r.latency_s for r in ok]
    stages = {}
    for name in STAGES:
        values = [r.stages[name] for r in ok]
        stages[name] = {"mean": _mean(values), "p50": quantile(values, 0.5),
                        "p99": quantile(values, 0.99)}  # fmt: skip
    # what no service reports: the device->channel hop, the channel's own gRPC queue and the
    # driver, i.e. latency minus the channel's whole handling
    outside = [r.latency_s - r.stages["channel_total_s"] for r in ok]
    stages["outside_channel_s"] = {"mean": _mean(outside), "p50": quantile(outside, 0.5),
                                   "p99": quantile(outside, 0.99)}  # fmt: skip
    return {
        "requests": len(records),
        "answered": len(ok),
        "errors": dict(Counter(r.code for r in records if r.code != "OK")),
        "throughput_per_s": len(ok) / run_s if run_s > 0 else 0.0,
        "p50_s": quantile(latencies, 0.5),
        "p99_s": quantile(latencies, 0.99),
        "accuracy": _mean([r.correct for r in ok]),
        "per_replica": dict(sorted(Counter(r.replica for r in ok).items())),
        "driver_lag_p99_s": quantile([r.lag_s for r in records], 0.99),
        "stages": stages,
    }


def by_device(records: list[Record], devices: list[Device], run_s: float) -> list[dict]:
    """One row per device: its rate, β, mean PSNR, answers/s, p50/p99 and accuracy."""
    grouped: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        grouped[record.device].append(record)
    rows = []
    for device in devices:
        mine = grouped.get(device.device_id, [])
        ok = [r for r in mine if r.code == "OK"]
        rows.append({
            "device": device.device_id,
            "rate_per_s": device.rate_per_s,
            "beta": device.beta,
            "mean_psnr_db": _mean([r.psnr_db for r in mine]),
            "requests": len(mine),
            "answered": len(ok),
            "throughput_per_s": len(ok) / run_s if run_s > 0 else 0.0,
            "p50_s": quantile([r.latency_s for r in ok], 0.5),
            "p99_s": quantile([r.latency_s for r in ok], 0.99),
            "accuracy": _mean([r.correct for r in ok]),
        })  # fmt: skip
    return rows


def device_spread(rows: list[dict]) -> dict:
    """How devices compare: median and worst of their own p99, and their accuracy spread."""
    p99s = [r["p99_s"] for r in rows if r["p99_s"] is not None]
    accuracies = [r["accuracy"] for r in rows if r["accuracy"] is not None and r["answered"] >= 5]
    return {
        "devices_served": sum(1 for r in rows if r["answered"]),
        "device_p99_median_s": quantile(p99s, 0.5),
        "device_p99_worst_s": max(p99s) if p99s else None,
        "device_accuracy_p10": quantile(accuracies, 0.1),
        "device_accuracy_p90": quantile(accuracies, 0.9),
    }


def write_devices_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _mean(values) -> float | None:
    return float(np.mean(np.asarray(values, dtype=np.float64))) if len(values) else None
