"""The C=1 device span paired with the echo chain: alternating blocks of device requests and
echo calls (tools.bench.load.paired_blocks), with a cache probe after every round
(tools.bench.contention) that tells the quiet rounds."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

import numpy as np

from tools.bench import echo
from tools.bench.chains import start_echo_chain
from tools.bench.contention import PROBE_MIB, PROBE_SLEEP_S, QUIET_MAX, cache_probe
from tools.bench.load import LIGHT_HTTP, PYTHON_GRPC, paired_blocks
from tools.bench.report import _ms
from tools.bench.stats import percentiles, stage_summary

# alternating blocks of this many calls, the first SPAN_WARMUP of each dropped
SPAN_BLOCK, SPAN_WARMUP = 100, 10


def measure_span(stack: ExitStack, url: str, pngs, sizes: dict, args) -> dict:
    """The C=1 device span and the echo chain in alternating blocks (paired_blocks): the
    figures of the C=1 span target, free of the machine's drift between sweep levels. A
    cache probe after every round (tools.bench.contention) says which rounds were quiet;
    their figures are reported beside those of all rounds."""
    target = start_echo_chain(stack, sizes["reply_bytes"])
    run = asyncio.run(
        paired_blocks({"ours": url}, target, echo.ECHO_METHOD, pngs,
                      bytes(sizes["request_bytes"]), args.span_rounds, SPAN_BLOCK, SPAN_WARMUP,
                      args.timeout_s, probe=lambda: cache_probe().ratio)
    )  # fmt: skip
    records = run.records["ours"]
    span = {
        "method": f"alternating blocks of {SPAN_BLOCK} device requests ({LIGHT_HTTP}) and "
        f"{SPAN_BLOCK} echo calls ({PYTHON_GRPC}), C=1, first {SPAN_WARMUP} of each block "
        "dropped",
        "rounds": args.span_rounds,
        **_span_block(records, run.echo_s),
        "cache_probe": {
            "what": f"a {PROBE_MIB} MiB array re-read after {PROBE_SLEEP_S * 1e3:g} ms asleep "
            "over its immediate re-read, after every round (tools.bench.contention); about "
            "1.0-1.1 when nothing outside the stack evicts the cache",
            "quiet_max": QUIET_MAX,
            "per_round": run.probes,
            "p50": float(np.median(run.probes)) if run.probes else None,
        },
    }
    span["per_round"] = _per_round(records, run)
    span["cache_probe"]["span_correlation"] = _correlation(
        [r["probe"] for r in span["per_round"]], [r["device_span_p50_s"] for r in span["per_round"]]
    )
    quiet = {r for r, ratio in enumerate(run.probes) if ratio <= QUIET_MAX}
    if quiet:
        echo_quiet = [s for s, r in zip(run.echo_s, run.echo_rounds, strict=True) if r in quiet]
        span["quiet"] = {
            "rounds": len(quiet),
            **_span_block([r for r in records if r["round"] in quiet], echo_quiet),
        }
    total_p50 = span.get("stages_s", {}).get("total", {}).get("p50")  # none if all failed
    print(f"  span C=1 (paired): device span p50 {_ms(total_p50)} ms, "
          f"echo p50 {_ms(span['echo_s']['p50'])} ms; cache probe p50 "
          f"{span['cache_probe']['p50']:.2f}, quiet rounds {len(quiet)}/{args.span_rounds}",
          flush=True)  # fmt: skip
    return span


def _correlation(x: list[float], y: list[float]) -> float | None:
    """Pearson's r of x and y; None for fewer than 5 points or a constant series."""
    if len(x) < 5 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _per_round(records: list[dict], run) -> list[dict]:
    """Each round's cache probe, device span p50 and echo p50 (s); rounds without an
    answered request are left out."""
    spans_by_round: dict[int, list[float]] = {}
    for x in records:
        if x["ok"]:
            spans_by_round.setdefault(x["round"], []).append(x["stages"]["total"])
    echo_by_round: dict[int, list[float]] = {}
    for s, r in zip(run.echo_s, run.echo_rounds, strict=True):
        echo_by_round.setdefault(r, []).append(s)
    rows = []
    for r, probe in enumerate(run.probes):
        spans, echo_s = spans_by_round.get(r), echo_by_round.get(r)
        if spans and echo_s:
            rows.append({"probe": probe, "device_span_p50_s": float(np.median(spans)),
                         "echo_p50_s": float(np.median(echo_s))})  # fmt: skip
    return rows


def _span_block(records: list[dict], echo_s: list[float]) -> dict:
    """Counts and percentiles of paired device records and echo latencies."""
    ok = [r for r in records if r["ok"]]
    return {
        "requests": len(records),
        "errors": len(records) - len(ok),
        "accuracy": float(np.mean([r["correct"] for r in ok])) if ok else None,
        "accuracy_n": len(ok),
        "echo_calls": len(echo_s),
        "echo_s": percentiles(echo_s),
        "http_s": percentiles([r["latency_s"] for r in ok]),
        **(stage_summary(ok) if ok else {}),
    }
