"""Where the channel's and the edge's CPU goes with many devices: py-spy on both processes
while the many-devices driver runs.

    python -m tools.devices.profile --devices 1000 --rate 1 --edge-batching on \
        --py-spy /path/to/py-spy --out reports/scale/profile

py-spy is not a project dependency (``pip install py-spy`` anywhere; pass its path). Writes,
per process, the collapsed stacks (``<name>-on.txt``) and a summary (``<name>-on-summary.txt``):
the share of samples whose innermost frame is our own code, gRPC's Python layer, the event
loop, PyTorch, NumPy, ..., and the functions with the most samples. py-spy counts the event
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

# where a sample's innermost frame is: the first matching part of its file path names it
PLACES = (
    ("ours (channel, edge_server, shared)", ("channel/", "edge_server/", "shared/")),
    ("gRPC's Python layer", ("grpc/",)),
    ("the event loop (uvloop's C loop, grpc.aio's Cython server, epoll)",
     ("asyncio/runners.py",)),
    ("asyncio's Python", ("asyncio/",)),
    ("PyTorch", ("torch/",)),
    ("NumPy", ("numpy/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("threads' own loops (the decoder thread's wait, metrics server)", ("threading.py",)),
)  # fmt: skip


def place_of(frame: str) -> str:
    for name, parts in PLACES:
        if any(part in frame for part in parts):
            return name
    return "other"


def summarise(collapsed: Path, top: int = 25) -> str:
    """Shares of samples by where the innermost frame is (:data:`PLACES`), then the top
    functions by own samples."""
    own, places, total = Counter(), Counter(), 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        innermost = stack.split(";")[-1]
        own[innermost] += n
        places[place_of(innermost)] += n
    lines = [f"samples {total}", "innermost frame in:"]
    lines += [f"{100 * n / max(total, 1):5.1f}% {name}" for name, n in places.most_common()]
    lines.append("own samples, top functions:")
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
    p.add_argument(
        "--summarise-only",
        action="store_true",
        help="summarise the collapsed stacks already in --out, run nothing",
    )
    args = p.parse_args(argv)
    if args.summarise_only:
        return write_summaries(args.out, args.edge_batching)
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
    return write_summaries(args.out, args.edge_batching)


def write_summaries(out: Path, batching: str) -> int:
    for name in ("channel", "edge"):
        collapsed = out / f"{name}-{batching}.txt"
        if not collapsed.is_file():
            print(f"py-spy wrote nothing for {name} (is ptrace allowed?)", file=sys.stderr)
            return 1
        summary = summarise(collapsed)
        (out / f"{name}-{batching}-summary.txt").write_text(summary)
        print(f"--- {name}\n{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
