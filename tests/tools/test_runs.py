"""tools.investigations.runs: several results.json files summarised, old bench versions included."""

from __future__ import annotations

import json

import pytest

from tools.investigations.runs import main, run_row


def _level(kind: str, c: int, per_s: float, p50_ms: float, p99_ms: float, total_ms=None):
    row = {"kind": kind, "concurrency": c, "throughput_per_s": per_s,
           "latency_s": {"p50": p50_ms / 1e3, "p99": p99_ms / 1e3}}  # fmt: skip
    if total_ms is not None:
        row["stages_s"] = {"encode": {"p50": 1e-4}, "decode": {"p50": 3e-4},
                           "total": {"p50": total_ms / 1e3}}  # fmt: skip
    return row


def _span(total_ms: float, echo_ms: float) -> dict:
    return {"echo_s": {"p50": echo_ms / 1e3}, "http_s": {"p50": (total_ms + 0.4) / 1e3},
            "stages_s": {"encode": {"p50": 1e-4}, "decode": {"p50": 3e-4},
                         "total": {"p50": total_ms / 1e3}}}  # fmt: skip


RESULTS = {
    "code": {"commit": "a" * 40, "dirty": False},
    "started_utc": "2026-11-26T06:00:00Z",
    "sweep": [
        _level("ours", 1, 450, 2.3, 3.0, total_ms=1.8),
        _level("echo", 1, 1150, 0.9, 1.1),
        _level("ours", 64, 2400, 30, 66),
        _level("echo", 64, 2000, 25, 80),
    ],
    "span_c1": {
        **_span(1.7, 0.8),
        "rounds": 20,
        "cache_probe": {"p50": 1.05, "per_round": [1.05] * 20, "quiet_max": 1.2},
        "quiet": {"rounds": 18, **_span(1.6, 0.8)},
    },  # fmt: skip
}


def test_a_row_has_the_issue_9_figures_of_the_run() -> None:
    row = run_row(RESULTS)
    assert row["commit"] == "a" * 40
    assert row["paired_ratio"] == pytest.approx(1.7 / 1.2)
    assert row["quiet_ratio"] == pytest.approx(1.6 / 1.2) and row["quiet_rounds"] == 18
    assert row["sweep_levels_ratio"] == pytest.approx(1.8 / 1.3)
    assert row["top_concurrency"] == 64
    assert row["throughput_vs_echo"] == pytest.approx(1.2)
    assert row["p99_vs_echo"] == pytest.approx(66 / 80)


def test_table_from_files_old_versions_give_dashes(tmp_path, capsys) -> None:
    new, old = tmp_path / "new.json", tmp_path / "old" / "results.json"
    old.parent.mkdir()
    new.write_text(json.dumps(RESULTS))
    legacy = {k: v for k, v in RESULTS.items() if k in ("sweep",)}  # before span_c1 existed
    old.write_text(json.dumps(legacy))
    out = tmp_path / "summary.md"
    assert main([str(new), str(old), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert out.read_text().endswith(table) and "new.json" in out.read_text()
    rows = table.splitlines()[2:]
    assert rows[0].startswith("| new | 2026-11-26T06:00:00Z | aaaaaaaa | 1.42x | 18/20 | 1.33x |")
    assert rows[1].startswith("| old | - | - | - | - | - | - | 1.38x | 1.20x | 0.83x |")


def test_a_file_that_is_not_a_bench_result_is_a_usage_error(tmp_path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit) as exc:
        main([str(bad)])
    assert exc.value.code == 2


def test_wire_accuracy_comes_from_the_paired_span_when_the_run_has_one() -> None:
    from tools.bench.report import wire_comparison

    model = {"bits": 4, "input_shape": [1, 28, 28]}
    sweep = [
        {"kind": "ours", "requests": 5000, "errors": 0, "accuracy": 0.80,
         "mean_bits": 256, "mean_symbols": 64},
        {"kind": "edge-only", "requests": 3000, "errors": 0, "accuracy": 0.88},
    ]  # fmt: skip
    span = {"accuracy": 0.885, "accuracy_n": 1800}
    wire = wire_comparison({"sweep": sweep, "span_c1": span}, model, 9600.0)
    assert (wire["ours_accuracy"], wire["ours_accuracy_replies"]) == (0.885, 1800)
    assert wire["ours_accuracy_from"] == "paired C=1 span"
    assert wire["edge_only_replies"] == 3000
    wire = wire_comparison({"sweep": sweep}, model, 9600.0)  # no paired span: the sweep's
    assert (wire["ours_accuracy"], wire["ours_accuracy_from"]) == (0.80, "sweep levels")


def test_reports_name_no_path_of_the_machine(tmp_path) -> None:
    from tools.stack import REPO, repo_relative

    assert repo_relative(REPO / "artifacts" / "quick") == "artifacts/quick"
    assert repo_relative(tmp_path / "bench") == "(outside the repository)/bench"
