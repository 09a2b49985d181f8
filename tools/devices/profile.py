"""Where the channel's and the edge's CPU goes with many devices: py-spy on both processes
while the many-devices driver runs.

    python -m tools.devices.profile --devices 1000 --rate 1 --edge-batching on \
        --py-spy /path/to/py-spy --out reports/scale/profile

py-spy is not a project dependency (``pip install py-spy`` anywhere; pass its path). Writes,
per process, the collapsed stacks (``<name>.txt``) and a summary (``<name>-summary.txt``):
the share of samples in our own code (the ``channel``/``edge_server``/``shared`` frames) and
in gRPC's Python layer, and the functions with the most samples. py-spy counts the event
loop's wait in epoll as busy (it cannot see into uvloop), so shares are of samples, not CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

from shared.manifest import load_manifest
from tools.devices.driver import drive
from tools.devices.population import beta_levels, make_devices
from tools.devices.symbols import SymbolBook
from tools.stack import Stack

OURS = ("channel/", "edge_server/", "shared/")


def summarise(collapsed: Path, top: int = 25) -> str:
    """Shares of samples: ours (inclusive, outermost own frame), gRPC's Python, and the top
    functions by own samples."""
    own, total, ours, grpc_layer = Counter(), 0, 0, 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        ours += n if any(any(p in f for p in OURS) for f in frames) else 0
        grpc_layer += n if any("grpc/" in f for f in frames) else 0
    lines = [f"samples {total}", f"in our code (inclusive) {100 * ours / max(total, 1):.1f}%",
             f"in grpc's Python layer {100 * grpc_layer / max(total, 1):.1f}%",
             "own samples, top functions:"]  # fmt: skip
    lines += [f"{100 * n / max(total, 1):5.1f}% {name}" for name, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.devices.profile", description=__doc__)
    p.add_argument("--model", default="artifacts/quick")
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--duration-s", type=float, default=15.0)
    p.add_argument("--edge-batching", choices=("on", "off"), default="on")
    p.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    p.add_argument("--out", type=Path, default=Path("reports/scale/profile"))
    args = p.parse_args(argv)
    manifest = load_manifest(args.model)
    book = SymbolBook(args.model, beta_levels(manifest.beta_range, 4), 256)
    stack = Stack(args.model, None, metrics_ports=True,
                  channel_flags=["--edge-batching", args.edge_batching])  # fmt: skip
    stack.start(("edge", "channel"))
    args.out.mkdir(parents=True, exist_ok=True)
    names = ("channel", "edge")
    try:
        devices = make_devices(args.devices, args.rate, book.betas)
        spies = [
            subprocess.Popen([args.py_spy, "record", "-p", str(stack.procs[name].pid), "-d",
                              str(max(1, int(args.duration_s) - 3)), "-r", "200", "-f", "raw",
                              "-o", str(args.out / f"{name}-{args.edge_batching}.txt"),
                              "--nonblocking"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
            for name in names
        ]  # fmt: skip
        records, run_s = asyncio.run(drive(stack.channel_target, devices, book, args.duration_s))
        for spy in spies:
            spy.wait()
    finally:
        stack.stop()
    answered = sum(r.code == "OK" for r in records)
    print(f"answered {answered} of {len(records)} in {run_s:.1f} s")
    for name in names:
        collapsed = args.out / f"{name}-{args.edge_batching}.txt"
        if not collapsed.is_file():
            print(f"py-spy wrote nothing for {name} (is ptrace allowed?)", file=sys.stderr)
            return 1
        summary = summarise(collapsed)
        (args.out / f"{name}-{args.edge_batching}-summary.txt").write_text(summary)
        print(f"--- {name}\n{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
