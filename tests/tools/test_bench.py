"""The load bench (tools/bench): unit checks of its statistics, the hey CSV parser and the
model lookup, and a tiny real run (concurrency 1,2 for 1 s) against a real edge + channel +
device stack and both references."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from tools.bench import cli
from tools.bench.hey import parse_hey_csv
from tools.bench.stats import PERCENTILES, STAGE_KEYS, percentiles, summarise_level
from tools.stack import REPO


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
    row = summarise_level("echo", 4, 2.0, records, "python-grpc.aio")
    assert row["requests"] == 3 and row["errors"] == 1
    assert row["throughput_per_s"] == pytest.approx(1.0)
    assert row["accuracy"] == pytest.approx(0.5)
    assert row["latency_s"]["p50"] == pytest.approx(0.02)
    assert row["generator"] == "python-grpc.aio"


def test_hey_csv_gives_records_and_window():
    text = (
        "response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,"
        "status-code,offset\n"
        "0.0100,0.0010,0.0000,0.0001,0.0090,0.0001,200,0.0005\n"
        "0.0200,0.0000,0.0000,0.0001,0.0190,0.0001,200,0.0110\n"
        "0.0050,0.0000,0.0000,0.0001,0.0040,0.0001,503,0.9900\n"
    )
    records, window_s = parse_hey_csv(text)
    assert [r["ok"] for r in records] == [True, True, False]
    assert [r["latency_s"] for r in records] == [0.01, 0.02, 0.005]
    assert window_s == pytest.approx(0.995)
    with pytest.raises(ValueError, match="no CSV"):
        parse_hey_csv("Summary:\n  Total: 0.0009 secs\n")


def test_missing_model_says_what_to_pass(tmp_path, monkeypatch):
    with pytest.raises(cli.UsageError, match="--model DIR"):
        cli.resolve_model(tmp_path / "nothing-here", train=True, data_dir=None)
    monkeypatch.setattr(cli, "DEFAULT_MODELS", (tmp_path / "a", tmp_path / "b"))
    with pytest.raises(cli.UsageError, match="python -m trainer train --quick --bits 4"):
        cli.resolve_model(None, train=False, data_dir=None)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text("{}")
    assert cli.resolve_model(None, train=False, data_dir=None) == tmp_path / "b"


def test_device_stays_free_of_the_bench():
    assert not (REPO / "device" / "bench.py").exists()
    result = subprocess.run(
        [sys.executable, "-m", "client", "bench"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 2 and "python -m tools.bench" in result.stderr


def _run_bench(out, model_dir, *extra) -> dict:
    command = [
        sys.executable, "-m", "tools.bench", "--model", str(model_dir),
        "--concurrency", "1,2", "--duration", "1", "--samples", "100",
        "--encoder-calls", "100", "--no-batching-compare", "--span-rounds", "2",
        "--out", str(out), *extra,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def test_bench_tiny_sweep(quick_model_dir, tmp_path):
    out = tmp_path / "bench"
    results = _run_bench(out, quick_model_dir, "--generator", "python")

    assert results["generator"] == {"http": "python-httpx", "grpc": "python-grpc.aio"}
    code = results["code"]  # which code ran: a commit, or None outside a git checkout
    assert code["commit"] is None or len(code["commit"]) == 40
    assert results["started_utc"].endswith("Z")
    rows = {(r["kind"], r["concurrency"]): r for r in results["sweep"]}
    assert set(rows) == {(k, c) for k in ("ours", "echo", "edge-only") for c in (1, 2)}
    for (kind, _), row in rows.items():
        assert row["errors"] == 0, row
        assert row["requests"] > 0 and row["throughput_per_s"] > 0
        lat = [row["latency_s"][f"p{q}"] for q in PERCENTILES]
        assert all(v is not None and v > 0 for v in lat), row
        assert lat == sorted(lat)
        assert row["generator"] == ("python-httpx" if kind == "ours" else "python-grpc.aio")
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
    # our accuracy from the paired span's 180 replies (different images), not the sweep's
    assert wire["ours_accuracy_from"] == "paired C=1 span"
    assert wire["ours_accuracy_replies"] == 2 * (100 - 10)
    assert wire["ours_accuracy"] == results["span_c1"]["accuracy"]
    assert wire["edge_only_replies"] > 0
    enc = results["encoder"]
    assert enc["ort_p50_s"] > 0 and enc["torch_p50_s"] > 0
    span = results["span_c1"]  # C=1 paired with the echo chain: 2 rounds of 100 + 100
    assert span["requests"] == span["echo_calls"] == 2 * (100 - 10) and span["errors"] == 0
    assert 0 < span["echo_s"]["p50"] <= span["echo_s"]["p99"]
    assert 0 < span["stages_s"]["total"]["p50"] <= span["http_s"]["p50"]
    probe = span["cache_probe"]  # one cache probe after each round
    assert len(probe["per_round"]) == 2 and all(v > 0 for v in probe["per_round"])
    assert [r["probe"] for r in span["per_round"]] == probe["per_round"]
    assert all(0 < r["echo_p50_s"] < r["device_span_p50_s"] for r in span["per_round"])
    quiet_rounds = sum(v <= probe["quiet_max"] for v in probe["per_round"])
    if quiet_rounds:  # the quiet rounds' figures: their share of the records
        assert span["quiet"]["rounds"] == quiet_rounds
        assert span["quiet"]["requests"] == quiet_rounds * (100 - 10)
    else:
        assert "quiet" not in span
    targets = [t["target"] for t in results["targets"]]
    assert len(targets) == 8, targets  # four absolute targets and four ratios
    span_target = next(
        t for t in results["targets"] if t["target"].startswith("device-span p50 at C=1 <= 1.5")
    )
    assert "paired blocks" in span_target["value"] and "sweep levels" in span_target["value"]
    assert "cache probe p50" in span_target["value"]
    assert all(isinstance(t["met"], bool) for t in results["targets"])

    with open(out / "sweep.csv") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == 6
    assert float(csv_rows[0]["latency_p50_s"]) > 0
    assert {r["generator"] for r in csv_rows} == {"python-httpx", "python-grpc.aio"}
    tables = (out / "tables.md").read_text()
    for heading in (
        "Sweep",
        "Per-stage",
        "Bytes and air-time",
        "Targets",
        "Load generators",
        "Device span at C=1, paired",
    ):
        assert heading in tables


@pytest.mark.skipif(shutil.which("hey") is None, reason="hey not installed (apt-get install hey)")
def test_bench_with_hey(quick_model_dir, tmp_path):
    results = _run_bench(
        tmp_path / "bench", quick_model_dir, "--generator", "hey", "--no-echo",
        "--no-edge-only", "--no-encoder", "--probe-rate", "20",
    )  # fmt: skip
    assert results["generator"]["http"].startswith("hey")
    for row in results["sweep"]:
        assert row["kind"] == "ours" and row["generator"].startswith("hey")
        assert row["errors"] == 0 and row["throughput_per_s"] > 0
        assert row["latency_s"]["p50"] > 0
        assert row["probe"]["requests"] > 0 and row["probe"]["errors"] == 0
        # at C=1 the probe runs alone after hey (one request in flight), else beside it
        alone = row["concurrency"] == 1
        assert row["probe"]["alone"] is alone
        assert row["stages_generator"] == (
            "python-httpx probe, alone after hey (one request in flight)"
            if alone
            else "python-httpx probe beside hey"
        )
        assert row["stages_s"]["decode"]["p50"] > 0
        assert 0.3 < row["accuracy"] <= 1.0


@pytest.mark.skipif(shutil.which("hey") is None, reason="hey not installed (apt-get install hey)")
def test_cpu_per_request_of_each_service(quick_model_dir, tmp_path):
    from tools.investigations.cpu import main

    out = tmp_path / "cpu.json"
    assert main(["--model", str(quick_model_dir), "--requests", "300", "--concurrency", "8",
                 "--out", str(out)]) == 0  # fmt: skip
    (row,) = json.loads(out.read_text())
    assert row["requests"] == 296 and row["ok"] == 296  # 37 from each of hey's 8 workers
    assert row["throughput_per_s"] > 0
    for service in ("edge", "channel", "device"):
        assert row[service]["total_ms"] > 0 and row[service]["threads_ms"]
    assert row["sum_ms"] == pytest.approx(
        sum(row[s]["total_ms"] for s in ("edge", "channel", "device"))
    )


def test_ab_runs_a_stack_beside_bare_stand_ins(quick_model_dir, tmp_path):
    """tools.investigations.ab: our stack and one with bare channel and edge, alternating blocks."""
    out = tmp_path / "ab.json"
    command = [sys.executable, "-m", "tools.investigations.ab", "--model", str(quick_model_dir),
               "--variant", "ours=.", "--variant", "bare=.:edge,channel", "--rounds", "1",
               "--block", "20", "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    for row in rows.values():
        assert row["requests"] == 18 and row["errors"] == 0  # 20 per block, 2 dropped
        assert row["p50_s"]["total"] <= row["p50_s"]["http"]
    assert rows["ours"]["p50_s"]["decode"] > 0 and rows["ours"]["p50_s"]["channel"] > 0
    assert rows["bare"]["p50_s"]["decode"] == 0 and rows["bare"]["p50_s"]["channel"] == 0


@pytest.mark.parametrize("text", ["ours", "=.", "x=.:gpu", "x=/nonexistent"])
def test_ab_variant_errors_name_the_form(text):
    import argparse

    from tools.investigations.ab import parse_variant

    with pytest.raises(argparse.ArgumentTypeError):
        parse_variant(text)
