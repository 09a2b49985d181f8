"""The many-devices load mode without processes: arrivals, PSNR walks, β levels, summaries."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from tools.devices.cli import int_list, merge_rows
from tools.devices.driver import STAGES, Record
from tools.devices.population import PsnrWalk, arrivals, beta_levels, make_devices
from tools.devices.report import by_device, summarise


def test_arrivals_are_poisson_at_each_devices_own_rate() -> None:
    devices = make_devices(3, 20.0, np.array([1e-3]), seed=4)
    times: dict[int, list[float]] = {0: [], 1: [], 2: []}
    last = -1.0
    for time_s, i in arrivals(devices, 200.0, seed=4):
        assert time_s >= last  # one merged stream, in time order
        last = time_s
        times[i].append(time_s)
    for i, device in enumerate(devices):
        expected = device.rate_per_s * 200.0
        assert abs(len(times[i]) - expected) < 4 * np.sqrt(expected)
        gaps = np.diff(times[i])
        assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.08)  # exponential: CV 1


def test_device_rates_spread_around_the_mean_rate() -> None:
    devices = make_devices(2000, 0.5, np.array([1e-3, 1e-1]), seed=1)
    rates = np.array([d.rate_per_s for d in devices])
    assert rates.mean() == pytest.approx(0.5, rel=0.03)
    assert rates.min() >= 0.25 and rates.max() <= 0.75
    assert {d.beta for d in devices} == {1e-3, 1e-1}


def test_psnr_walk_steps_within_bounds_and_is_reproducible() -> None:
    def walk(seed):
        w = PsnrWalk(6.0, 5.0, 8.0, 1.0, 0.5, np.random.default_rng(seed))
        return [w.at(t) for t in np.arange(0.0, 50.0, 0.25)]

    values = walk(3)
    assert values == walk(3) and values != walk(4)
    assert min(values) >= 5.0 and max(values) <= 8.0
    steps = np.abs(np.diff(values))
    assert set(np.round(steps, 9)) <= {0.0, 1.0}
    assert len(set(values)) == 4  # it visits 5, 6, 7, 8 dB


def test_beta_levels_are_log_spaced_over_the_trained_range() -> None:
    levels = beta_levels((1e-5, 1.0), 6)
    assert levels[0] == pytest.approx(1e-5) and levels[-1] == pytest.approx(1.0)
    assert np.allclose(np.diff(np.log10(levels)), 1.0)


@pytest.mark.parametrize(
    ("n", "rate", "match"), [(0, 1.0, "devices"), (10, 0.0, "rate"), (10, -1.0, "rate")]
)
def test_bad_population_is_refused(n: int, rate: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_devices(n, rate, np.array([1e-3]))


def record(device, latency_s, code="OK", correct=True, replica="edge", **stages) -> Record:
    full = {name: 0.001 for name in STAGES}
    full.update(stages)
    return Record(device, 0.0, 0.0, latency_s, code, correct, replica, 10.0, full)


def test_summary_counts_throughput_latency_accuracy_and_replicas() -> None:
    records = [record(0, 0.010 * (k + 1), replica=f"r{k % 2}") for k in range(10)]
    records[0].correct = False
    records.append(record(1, 2.0, code="DEADLINE_EXCEEDED", correct=False, replica=""))
    summary = summarise(records, run_s=2.0)
    assert summary["answered"] == 10 and summary["requests"] == 11
    assert summary["throughput_per_s"] == 5.0
    assert summary["p50_s"] == pytest.approx(0.055)
    assert summary["accuracy"] == 0.9
    assert summary["errors"] == {"DEADLINE_EXCEEDED": 1}
    assert summary["per_replica"] == {"r0": 5, "r1": 5}
    rows = by_device(records, make_devices(2, 1.0, np.array([1e-3])), run_s=2.0)
    assert [r["answered"] for r in rows] == [10, 0] and rows[1]["p99_s"] is None


def test_device_and_replica_lists_must_be_positive_integers() -> None:
    assert int_list("1,2") == [1, 2]
    for bad in ("", "0", "1,x"):
        with pytest.raises(argparse.ArgumentTypeError):
            int_list(bad)


def test_results_keep_earlier_runs_with_other_keys(tmp_path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"runs": [{"devices": 1, "edge_replicas": 1, "rate_per_device_per_s": 1,'
                    ' "p50_s": 9}, {"devices": 2, "edge_replicas": 1, '
                    '"rate_per_device_per_s": 1}]}')  # fmt: skip
    new = [{"devices": 1, "edge_replicas": 1, "rate_per_device_per_s": 1, "p50_s": 1}]
    merged = merge_rows(path, new)
    assert [r["devices"] for r in merged] == [2, 1] and merged[-1]["p50_s"] == 1


def test_a_missing_model_is_a_usage_error_not_a_traceback(tmp_path, capsys) -> None:
    from tools.devices.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(tmp_path), "--devices", "1", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_batching_lists_are_on_off_words() -> None:
    from tools.devices.cli import switch_list

    assert switch_list("on,off") == [True, False] and switch_list("off") == [False]
    for bad in ("", "yes", "on,maybe"):
        with pytest.raises(argparse.ArgumentTypeError):
            switch_list(bad)


def test_mean_batch_sizes_come_from_the_services_metrics_pages() -> None:
    from channel.metrics import ChannelMetrics
    from tools.devices.cli import batch_counts, mean_batches
    from tools.stack import free_port

    metrics, port = ChannelMetrics(), free_port()
    metrics.serve(port)
    url = f"http://127.0.0.1:{port}/metrics"
    for size in (1, 1, 4):
        metrics.edge_batch_size.observe(size)
    before = batch_counts([url])
    for size in (8, 16, 12):  # 36 transmissions in 3 calls
        metrics.edge_batch_size.observe(size)
    means = mean_batches(before, batch_counts([url]))
    assert means == {"channel_to_edge": 12.0, "decoder": None}  # no edge page given


def test_run_names_tell_batching_and_load_apart() -> None:
    from tools.devices.cli import run_name

    row = {"devices": 1000, "edge_replicas": 1, "edge_batching": True, "concurrency": 0,
           "rate_per_device_per_s": 1.0}  # fmt: skip
    assert run_name(row) == "devices-1000x1-batched-rate1.csv"
    row.update(edge_batching=False, concurrency=256)
    assert run_name(row) == "devices-1000x1-unbatched-c256.csv"
    row.update(edge_batching=True, concurrency=0, channel_flags="--edge-batch-delay-ms=5")
    assert run_name(row) == "devices-1000x1-batched-edge-batch-delay-ms-5-rate1.csv"
    row.update(edge_flags="--inline-decode-max 8")
    assert run_name(row) == (
        "devices-1000x1-batched-edge-batch-delay-ms-5-edge-inline-decode-max-8-rate1.csv"
    )


def test_the_plot_pairs_batching_on_and_off_of_each_load(tmp_path) -> None:
    import json

    from tools.devices.plot import paired_rows, plot

    def row(batching, concurrency=0, edge=0.2):
        return {"devices": 1000, "edge_replicas": 1, "rate_per_device_per_s": 1.0,
                "edge_batching": batching, "concurrency": concurrency, "channel_flags": "",
                "p99_s": 0.05, "cpu_ms_per_answer": {"edge": edge, "channel": 0.3,
                                                     "driver": 0.3}}  # fmt: skip

    runs = [row(True), row(False, edge=0.8), row(True, 256), row(None)]
    pairs = paired_rows(runs)
    assert [(label, on is not None, off is not None) for label, on, off in pairs] == [
        ("1,000 × 1/s", True, True), ("saturation C=256", True, False)]  # fmt: skip
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"runs": runs}))
    out = plot(results, tmp_path / "cpu.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_summary_places_each_sample_by_its_innermost_frame(tmp_path) -> None:
    from tools.devices.profile import summarise

    collapsed = tmp_path / "channel.txt"
    collapsed.write_text(
        "main (channel/server.py:1);transmit (channel/service.py:9) 30\n"
        "main (channel/server.py:1);_invoke (grpc/aio/_call.py:595) 50\n"
        "run (asyncio/runners.py:118) 20\n"
    )
    summary = summarise(collapsed)
    assert "samples 100" in summary
    assert "30.0% ours (channel, edge_server, shared)" in summary
    assert "50.0% gRPC's Python layer" in summary
    assert "20.0% the event loop" in summary
    assert "50.0% _invoke (grpc/aio/_call.py:595)" in summary


def test_each_edge_flags_setting_reaches_its_own_stack(monkeypatch) -> None:
    """``--edge-flags`` repeats: one setting each ('' = the edge's defaults), and the edge
    replicas of that setting's stack are started with its flags."""
    from tools.devices.cli import parser, start_stack
    from tools.stack import Stack

    args = parser().parse_args(["--edge-flags", "", "--edge-flags", "--inline-decode-max 8"])
    assert args.edge_flags == ["", "--inline-decode-max 8"]
    assert parser().parse_args([]).edge_flags is None
    monkeypatch.setattr(Stack, "start", lambda self, services=None: self)
    stacks = [start_stack(args, 2, True, flags) for flags in args.edge_flags]
    assert stacks[0].command("edge")[-2:] == ["--metrics-port", stacks[0].metrics_ports["edge"]]
    for name in ("edge", "edge-1"):
        assert stacks[1].command(name)[-2:] == ["--inline-decode-max", "8"]
