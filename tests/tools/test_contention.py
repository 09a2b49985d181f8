"""The cache probe of tools.bench.contention, and the quiet-round figures it selects."""

from __future__ import annotations

import pytest

from tools.bench.contention import QUIET_MAX, ProbeResult, cache_probe
from tools.bench.report import _paired_span_lines, span_figures


def test_probe_times_both_reads_and_refuses_bad_arguments() -> None:
    result = cache_probe(size_mib=1, sleep_s=0.0005, reps=3)
    assert result.hot_s > 0 and result.after_sleep_s > 0
    assert result.ratio == pytest.approx(result.after_sleep_s / result.hot_s)
    assert ProbeResult(hot_s=2e-5, after_sleep_s=5e-5).ratio == pytest.approx(2.5)
    with pytest.raises(ValueError):
        cache_probe(size_mib=0)
    with pytest.raises(ValueError):
        cache_probe(reps=0)


def _block(total_ms: float, echo_ms: float) -> dict:
    p = lambda ms: {"p50": ms / 1e3, "p99": 2 * ms / 1e3}  # noqa: E731
    stages = {k: p(0.1) for k in ("preprocess", "device_to_channel", "channel",
                                  "channel_to_edge", "edge_queue", "edge_total",
                                  "channel_total", "rpc")}  # fmt: skip
    stages.update(encode=p(0.1), decode=p(0.3), total=p(total_ms))
    return {"requests": 90, "errors": 0, "echo_calls": 90, "echo_s": p(echo_ms),
            "http_s": p(total_ms + 0.4), "stages_s": stages}  # fmt: skip


def test_target_text_and_tables_show_the_quiet_rounds_beside_all_rounds() -> None:
    span = {"method": "m", "rounds": 3, **_block(2.4, 0.9),
            "cache_probe": {"what": "w", "quiet_max": QUIET_MAX, "per_round": [1.05, 2.3, 1.1],
                            "p50": 1.1, "span_correlation": 0.93},
            "quiet": {"rounds": 2, **_block(1.6, 0.85)}}  # fmt: skip
    figures, how, other = span_figures({"sweep": [], "span_c1": span})
    assert how == "paired blocks"
    assert figures[0] / figures[1] == pytest.approx(2.4 / 1.3)  # the verdict: all rounds
    assert "quiet rounds 2/3" in other and f"{1.6 / 1.25:.2f}x" in other
    lines = _paired_span_lines(span)
    assert any("quiet p50 ms" in line for line in lines)
    assert any("device span p50: 0.93" in line for line in lines)
    assert any(line.startswith("| total | 2.40 |") and "1.60" in line for line in lines)

    del span["quiet"]
    span["cache_probe"]["per_round"] = [2.0, 2.5, 3.0]
    _, _, other = span_figures({"sweep": [], "span_c1": span})
    assert "no quiet round of 3" in other
    assert not any("quiet p50" in line for line in _paired_span_lines(span))


def test_per_round_figures_skip_rounds_without_answers_and_correlate_only_real_series() -> None:
    from tools.bench.load import PairedRun
    from tools.bench.span import _correlation, _per_round

    ok = lambda r, total: {"ok": True, "round": r, "stages": {"total": total}}  # noqa: E731
    records = [ok(0, 2e-3), ok(0, 4e-3), {"ok": False, "round": 1}, ok(2, 1e-3)]
    run = PairedRun({"ours": records}, [8e-4, 9e-4, 7e-4], [0, 1, 2], probes=[1.5, 1.0, 1.05])
    rows = _per_round(records, run)
    assert rows == [
        {"probe": 1.5, "device_span_p50_s": 3e-3, "echo_p50_s": 8e-4},
        {"probe": 1.05, "device_span_p50_s": 1e-3, "echo_p50_s": 7e-4},
    ]
    assert _correlation([1.0, 1.1, 1.2, 1.5, 2.0], [1.6, 1.7, 1.8, 2.0, 2.4]) > 0.95
    assert _correlation([1.0] * 5, [1.6, 1.7, 1.8, 2.0, 2.4]) is None  # constant: no r
    assert _correlation([1.0, 1.1], [1.6, 1.7]) is None  # too few points
