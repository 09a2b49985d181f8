"""The soak (tools/soak.py): a short real run through the live stack (3,000 requests at C=8)
has no errors and no process's RSS grows by 10 % after warm-up; its statistics and verdict.

Warm-up for the short run: the first 10 % (300 requests). In runs here each process's RSS
rose by 1-4 MiB in the first ~200 requests (allocator arenas, gRPC and ONNX Runtime buffers)
and by < 0.5 % from request 300 to the end, so 300 requests are past the start-up growth
and the 10 % bound has a wide margin on a short run as on the 100,000-request one.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from tools import soak

SHORT_REQUESTS = 3000


def test_short_soak_has_no_errors_and_no_rss_growth(quick_model_dir, tmp_path) -> None:
    out = tmp_path / "soak"
    args = ["--model", quick_model_dir, "--requests", SHORT_REQUESTS, "--concurrency", 8,
            "--rss-interval-s", 0.5, "--out", out]  # fmt: skip
    code = soak.main([str(arg) for arg in args])
    results = json.loads((out / "results.json").read_text())
    assert code == 0, results["failures"]
    assert results["requests"] == SHORT_REQUESTS
    assert results["errors"] == 0 and results["errors_by_status"] == {}
    assert len(results["windows"]) == 10
    assert sum(w["requests"][1] - w["requests"][0] for w in results["windows"]) == SHORT_REQUESTS
    assert all(0 < w["p50_ms"] <= w["p99_ms"] for w in results["windows"])
    assert set(results["rss"]) == {"device", "channel", "edge"}
    for name, row in results["rss"].items():
        assert row["rss_after_warmup_kib"] > 10_000, name  # a real reading (> 10 MiB)
        assert row["growth"] < 0.10, (name, row)
    assert results["rss_samples"][0]["requests"] == 0
    assert results["rss_samples"][-1]["requests"] == SHORT_REQUESTS
    assert (out / "soak.png").stat().st_size > 10_000


def fake_soak(outcomes: list[str], latencies_s: list[float], rss: list[dict]) -> soak.Soak:
    n = len(outcomes)
    args = SimpleNamespace(requests=n, concurrency=1, timeout_s=1.0, rss_interval_s=1.0,
                           windows=2, warmup_fraction=0.5)  # fmt: skip
    run = soak.Soak("http://unused", [b""], {"device": 1, "edge": 2}, args)
    run.outcome = list(outcomes)
    run.latency_s = np.asarray(latencies_s)
    run.done_at = np.arange(1, n + 1, dtype=float)
    run.rss = rss
    return run


def test_windows_split_by_completed_requests() -> None:
    run = fake_soak(["200", "200", "503", "200"], [0.010, 0.030, 0.001, 0.050], [])
    first, second = soak.window_rows(run, 2)
    assert first["requests"] == [0, 2] and second["requests"] == [2, 4]
    assert first["errors"] == 0 and second["errors"] == 1
    assert first["p50_ms"] == pytest.approx(20.0)
    assert second["p50_ms"] == pytest.approx(50.0)  # the 503's latency is not counted
    assert first["throughput_per_s"] == pytest.approx(2 / 2.0)


def test_rss_growth_is_end_over_the_first_sample_after_warm_up() -> None:
    rss = [
        {"requests": 0, "device": 100, "edge": 200},
        {"requests": 40, "device": 150, "edge": 240},
        {"requests": 50, "device": 160, "edge": 250},
        {"requests": 100, "device": 176, "edge": 250},
    ]
    run = fake_soak(["200"] * 100, [0.01] * 100, rss)
    growth = soak.rss_growth(run, warmup_requests=50)
    assert growth["device"]["rss_after_warmup_kib"] == 160
    assert growth["device"]["growth"] == pytest.approx(0.10)
    assert growth["edge"]["growth"] == pytest.approx(0.0)
    assert growth["device"]["rss_peak_kib"] == 176


def test_rss_of_this_process_is_read_and_of_a_gone_one_is_none() -> None:
    assert soak.rss_kib(os.getpid()) > 1000
    assert soak.rss_kib(2**22 + 12345) is None


def test_bad_flags_are_a_usage_error(capsys) -> None:
    assert soak.main(["--requests", "0"]) == 2
    assert "--requests" in capsys.readouterr().err
    assert soak.main(["--warmup-fraction", "1.5"]) == 2
