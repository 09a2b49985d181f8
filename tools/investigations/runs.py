"""Several bench runs side by side: the serving figures (ratios to the echo chain) of each
``results.json``.

    python -m tools.investigations.runs reports/bench/runs/*.json \\
        --out reports/bench/runs/summary.md

One row per run: when it started, the commit it ran, the paired C=1 span ratio over all
rounds and over the quiet ones (with the cache probe's median, :mod:`tools.bench.contention`),
the sweep levels' C=1 ratio, and at the top concurrency the throughput and p99 against the
echo chain. The figures are recomputed from each file the way the bench computes its
targets (:func:`tools.bench.report.span_figures`), so files from older bench versions give
what they have and "-" for the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.bench.report import _by_concurrency, _device_span_ratio, _paired_span_ratio
from tools.stack import repo_relative


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def run_row(results: dict) -> dict:
    """The serving figures of one bench run (None where the run has no such figure)."""
    sweep = results["sweep"]
    ours, echo = _by_concurrency(sweep, "ours"), _by_concurrency(sweep, "echo")
    span = results.get("span_c1") or {}
    paired = _paired_span_ratio(span)
    quiet = _paired_span_ratio(span.get("quiet"))
    levels = _device_span_ratio(ours, echo)
    probe = span.get("cache_probe") or {}
    row = {
        "started_utc": results.get("started_utc"),
        "commit": (results.get("code") or {}).get("commit"),
        "paired_ratio": paired[0] / paired[1] if paired else None,
        "device_span_p50_s": paired[0] if paired else None,
        "bound_p50_s": paired[1] if paired else None,
        "quiet_ratio": quiet[0] / quiet[1] if quiet else None,
        "quiet_rounds": (span.get("quiet") or {}).get("rounds", 0 if probe else None),
        "rounds": span.get("rounds"),
        "cache_probe_p50": probe.get("p50"),
        "sweep_levels_ratio": levels[0] / levels[1] if levels else None,
    }
    common = sorted(set(ours) & set(echo))
    if common:
        c = common[-1]
        row["top_concurrency"] = c
        row["throughput_vs_echo"] = ours[c]["throughput_per_s"] / echo[c]["throughput_per_s"]
        p99_o, p99_e = ours[c]["latency_s"]["p99"], echo[c]["latency_s"]["p99"]
        row["p99_vs_echo"] = p99_o / p99_e if p99_o and p99_e else None
    return row


def render(rows: list[tuple[str, dict]]) -> str:
    lines = [
        "| run | started (UTC) | commit | C=1 span ratio, all rounds | quiet rounds | "
        "ratio, quiet rounds | cache probe p50 | sweep levels | C=64 img/s vs echo | "
        "C=64 p99 vs echo |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        quiet = "-" if r["quiet_rounds"] is None else f"{r['quiet_rounds']}/{r['rounds']}"
        probe = "-" if r["cache_probe_p50"] is None else f"{r['cache_probe_p50']:.2f}"
        lines.append(
            f"| {name} | {r['started_utc'] or '-'} | {(r['commit'] or '-')[:8]} | "
            f"{_x(r['paired_ratio'])} | {quiet} | {_x(r['quiet_ratio'])} | {probe} | "
            f"{_x(r['sweep_levels_ratio'])} | {_x(r.get('throughput_vs_echo'))} | "
            f"{_x(r.get('p99_vs_echo'))} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.investigations.runs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results", nargs="+", type=Path, help="results.json files of runs")
    parser.add_argument("--out", type=Path, default=None, help="write the table here too")
    args = parser.parse_args(argv)
    rows = []
    for path in args.results:
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            parser.error(f"{path}: not a readable results.json ({exc})")
        if not isinstance(results, dict) or "sweep" not in results:
            parser.error(f"{path}: no 'sweep' in it; is it a tools.bench results.json?")
        name = path.parent.name if path.name == "results.json" else path.stem
        rows.append((name, run_row(results)))
    table = render(rows)
    print(table, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        files = ", ".join(f"`{repo_relative(path)}`" for path in args.results)
        args.out.write_text(f"# Bench runs\n\nOne row per run, written by `python -m "
                            f"tools.investigations.runs` from {files}.\n\n{table}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
