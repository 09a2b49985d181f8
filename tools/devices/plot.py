"""Plots of a many-devices results.json: CPU per answered request per process and the
latency, channel batching on beside off for every load.

    python -m tools.devices.plot reports/scale/results.json   # writes cpu_per_request.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PROCESSES = ("channel", "edge", "driver")
COLOURS = {"channel": "tab:blue", "edge": "tab:orange", "driver": "tab:gray"}


def load_label(row: dict) -> str:
    """What load a row ran: N devices × rate, or a closed loop of C requests."""
    replicas = f", {row['edge_replicas']} repl." if row["edge_replicas"] != 1 else ""
    replicas += f", {row['channel_flags']}" if row.get("channel_flags") else ""
    if row.get("concurrency"):
        return f"saturation C={row['concurrency']}{replicas}"
    return f"{row['devices']:,} × {row['rate_per_device_per_s']:g}/s{replicas}"


def paired_rows(runs: list[dict]) -> list[tuple[str, dict | None, dict | None]]:
    """(load, batching-on row, batching-off row) for every load that ran with batching set."""
    loads: dict[str, dict[bool, dict]] = {}
    for row in runs:
        if row.get("edge_batching") is None:
            continue
        loads.setdefault(load_label(row), {})[row["edge_batching"]] = row
    return [(label, pair.get(True), pair.get(False)) for label, pair in loads.items()]


def cpu_of(row: dict, process: str) -> float:
    """ms of CPU per answered request of ``process`` (every edge replica summed)."""
    cpu = row["cpu_ms_per_answer"]
    if process == "edge":
        return sum(v for k, v in cpu.items() if k.startswith("edge"))
    return cpu.get(process, 0.0)


def plot(results: Path, out: Path) -> Path:
    runs = json.loads(results.read_text())["runs"]
    pairs = paired_rows(runs)
    if not pairs:
        raise ValueError(f"{results}: no run with edge_batching recorded")
    fig, (cpu_ax, lat_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.38
    for i, (_, on, off) in enumerate(pairs):
        for offset, row, hatch in ((-width / 2, on, ""), (width / 2, off, "//")):
            if row is None:
                continue
            bottom = 0.0
            for process in PROCESSES:
                value = cpu_of(row, process)
                cpu_ax.bar(i + offset, value, width, bottom=bottom, color=COLOURS[process],
                           hatch=hatch, edgecolor="white")  # fmt: skip
                bottom += value
            p99 = row["p99_s"]
            if p99 is not None:
                lat_ax.bar(i + offset, 1e3 * p99, width, color="tab:red" if row is off
                           else "tab:green", hatch=hatch)  # fmt: skip
    for ax in (cpu_ax, lat_ax):
        ax.set_xticks(range(len(pairs)), [p[0] for p in pairs], rotation=15, fontsize=8)
    cpu_ax.set_ylabel("CPU ms per answered request")
    cpu_ax.set_title("left bar: channel batching on; hatched: off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[p]) for p in PROCESSES]
    cpu_ax.legend(handles, PROCESSES, fontsize=8)
    lat_ax.set_ylabel("p99 latency, ms (log)")
    lat_ax.set_yscale("log")
    lat_ax.set_title("p99 (green: batching on, red hatched: off)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.devices.plot", description=__doc__)
    p.add_argument("results", type=Path, help="a tools.devices results.json")
    p.add_argument("--out", type=Path, help="PNG (default: cpu_per_request.png beside it)")
    args = p.parse_args(argv)
    if not args.results.is_file():
        p.error(f"no such file: {args.results}")
    try:
        path = plot(args.results, args.out or args.results.with_name("cpu_per_request.png"))
    except (ValueError, KeyError) as exc:
        p.error(str(exc))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
