"""The load bench (device/bench.py): unit checks of its statistics, and a tiny real run
(concurrency 1,2 for 1 s) against a real edge + channel + device stack and both references."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from device.bench import PERCENTILES, STAGE_KEYS, percentiles, summarise_level
from tests.procs import REPO


def test_percentiles_and_summary():
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    p = percentiles(values)
    assert p["p50"] == pytest.approx(0.0505)
    assert p["p99"] == pytest.approx(0.09901)
    assert percentiles([]) == {f"p{q}": None for q in PERCENTILES}
    records = [
        {"ok": True, "latency_s": 0.01, "correct": True},
        {"ok": True, "latency_s": 0.03, "correct": False},
        {"ok": False, "latency_s": None},
    ]
    row = summarise_level("echo", 4, 2.0, records)
    assert row["requests"] == 3 and row["errors"] == 1
    assert row["throughput_per_s"] == pytest.approx(1.0)
    assert row["accuracy"] == pytest.approx(0.5)
    assert row["latency_s"]["p50"] == pytest.approx(0.02)


def test_bench_tiny_sweep(quick_model_dir, tmp_path):
    out = tmp_path / "bench"
    command = [
        sys.executable, "-m", "device.client", "bench", "--model", str(quick_model_dir),
        "--concurrency", "1,2", "--duration", "1", "--samples", "100",
        "--encoder-calls", "100", "--no-batching-compare", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    rows = {(r["kind"], r["concurrency"]): r for r in results["sweep"]}
    assert set(rows) == {(k, c) for k in ("ours", "echo", "edge-only") for c in (1, 2)}
    for (kind, _), row in rows.items():
        assert row["errors"] == 0, row
        assert row["requests"] > 0 and row["throughput_per_s"] > 0
        lat = [row["latency_s"][f"p{q}"] for q in PERCENTILES]
        assert all(v is not None and v > 0 for v in lat), row
        assert lat == sorted(lat)
        if kind != "echo":
            assert 0.5 < row["accuracy"] <= 1.0  # a trained model, not chance
    for c in (1, 2):
        ours = rows[("ours", c)]
        assert set(ours["stages_s"]) == set(STAGE_KEYS)
        assert ours["stages_s"]["encode"]["p50"] > 0 and ours["stages_s"]["decode"]["p50"] > 0
        assert ours["stages_s"]["total"]["p50"] <= ours["latency_s"]["p50"]
        assert ours["mean_symbols"] > 0 and ours["mean_bits"] > 0

    wire = results["wire"]
    bits = wire["bits_per_symbol"]
    assert wire["edge_only_payload_bytes"] == 784
    assert wire["bits_ratio"] == pytest.approx(784 * 8 / (wire["ours_symbols"] * bits))
    assert wire["airtime_ratio"] == pytest.approx((784 * 8 / bits) / wire["ours_symbols"])
    assert wire["ours_airtime_s"] == pytest.approx(wire["ours_symbols"] / 9600)
    enc = results["encoder"]
    assert enc["ort_p50_s"] > 0 and enc["torch_p50_s"] > 0
    names = {t["target"].split(" ")[0] for t in results["targets"]}
    assert len(results["targets"]) == 4, names
    assert all(isinstance(t["met"], bool) for t in results["targets"])

    with open(out / "sweep.csv") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == 6
    assert float(csv_rows[0]["latency_p50_s"]) > 0
    tables = (out / "tables.md").read_text()
    for heading in ("Sweep", "Per-stage", "Bytes and air-time", "Targets"):
        assert heading in tables
