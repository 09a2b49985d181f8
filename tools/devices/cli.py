"""``python -m tools.devices``: N simulated devices through the channel into 1..R edge
replicas; writes one row per run to ``<out>/results.json`` and a per-device CSV per run."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path

from shared.manifest import ManifestError, load_manifest
from tools.devices.driver import drive
from tools.devices.population import beta_levels, make_devices
from tools.devices.report import by_device, device_spread, summarise, write_devices_csv
from tools.devices.symbols import SymbolBook
from tools.stack import REPO, Stack

KEY = ("devices", "edge_replicas", "rate_per_device_per_s")


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1 like 1,2; got {text!r}")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.devices", description=__doc__)
    p.add_argument("--model", default="artifacts/quick", help="model folder")
    p.add_argument("--devices", type=int_list, default=[1000], help="N, or a list: 100,1000")
    p.add_argument("--rate", type=float, default=0.5, help="mean requests/s per device")
    p.add_argument("--duration-s", type=float, default=20.0, help="arrival window, s")
    p.add_argument("--edge-replicas", type=int_list, default=[1, 2], help="e.g. 1,2")
    p.add_argument(
        "--channel",
        help="drive a running channel HOST:PORT instead of starting a stack (edge_replicas "
        "is then recorded as 0: unknown here; see per_replica)",
    )
    p.add_argument("--deadline-s", type=float, default=2.0, help="deadline per request, s")
    p.add_argument("--beta-levels", type=int, default=4, help="β values (log-spaced)")
    p.add_argument("--psnr-low", type=float, default=5.0, help="PSNR walk low bound, dB")
    p.add_argument("--psnr-high", type=float, default=25.0, help="PSNR walk high bound, dB")
    p.add_argument("--images", type=int, default=256, help="test images pre-encoded")
    p.add_argument("--data-dir", help="Fashion-MNIST IDX folder (default: Debian's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(REPO / "reports" / "scale"), help="report folder")
    return p


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), s."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(args, target: str, n_devices: int, replicas: int, book, procs: dict) -> dict:
    """One load run against ``target``; the row for results.json (and the device rows)."""
    betas = book.betas
    devices = make_devices(n_devices, args.rate, betas, args.psnr_low, args.psnr_high,
                           seed=args.seed)  # fmt: skip
    load_before = os.getloadavg()
    before = {name: cpu_seconds(pid) for name, pid in procs.items()}
    driver_before = time.process_time()
    records, run_s = asyncio.run(
        drive(target, devices, book, args.duration_s, args.deadline_s, args.seed)
    )
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in procs.items()}
    cpu["driver"] = time.process_time() - driver_before
    summary = summarise(records, run_s)
    rows = by_device(records, devices, run_s)
    answered = max(summary["answered"], 1)
    row = {
        "devices": n_devices,
        "edge_replicas": replicas,
        "rate_per_device_per_s": args.rate,
        "offered_per_s": sum(d.rate_per_s for d in devices),
        "duration_s": args.duration_s,
        "run_s": run_s,
        **summary,
        **device_spread(rows),
        "cpu_s": cpu,
        "cpu_ms_per_answer": {name: 1e3 * s / answered for name, s in cpu.items()},
        "model": Path(args.model).name,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
    }
    return row, rows


def merge_rows(path: Path, new_rows: list[dict]) -> list[dict]:
    """Earlier rows of ``path`` with a different key, then the new ones."""
    old = json.loads(path.read_text())["runs"] if path.is_file() else []
    keys = {tuple(r[k] for k in KEY) for r in new_rows}
    return [r for r in old if tuple(r.get(k) for k in KEY) not in keys] + new_rows


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.rate <= 0 or args.duration_s <= 0:
        parser().error("--rate and --duration-s must be > 0")
    if args.beta_levels < 1 or args.images < 1:
        parser().error("--beta-levels and --images must be >= 1")
    out = Path(args.out)
    try:
        manifest = load_manifest(args.model)
        betas = beta_levels(manifest.beta_range, args.beta_levels)
        book = SymbolBook(args.model, betas, args.images, data_dir=args.data_dir)
    except (ManifestError, OSError, ValueError) as exc:  # no model, no data, bad values
        parser().error(str(exc))
    results = []
    for replicas in [0] if args.channel else args.edge_replicas:
        stack = None
        target, procs = args.channel, {}
        if not args.channel:  # a fresh stack per replica count: R edge replicas + channel
            stack = Stack(args.model, None, edge_replicas=replicas, metrics_ports=True)
            stack.start(("edge", "channel"))
            target = stack.channel_target
            procs = {name: p.pid for name, p in stack.procs.items()}
        try:
            for n_devices in args.devices:
                row, device_rows = run_once(args, target, n_devices, replicas, book, procs)
                results.append(row)
                name = f"devices-{n_devices}x{replicas}-rate{args.rate:g}.csv"
                write_devices_csv(device_rows, out / name)
                shown = (*KEY, "offered_per_s", "throughput_per_s", "p50_s", "p99_s",
                         "accuracy", "errors", "per_replica")  # fmt: skip
                print(json.dumps({k: row[k] for k in shown}), flush=True)
        finally:
            if stack is not None:
                stack.stop()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps({"runs": merge_rows(path, results)}, indent=2) + "\n")
    print(f"wrote {path}")
    return 0
