"""``python -m tools.devices``: N simulated devices through the channel into 1..R edge
replicas; writes one row per run to ``<out>/results.json`` and a per-device CSV per run."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import time
import urllib.request
from pathlib import Path

from shared.manifest import ManifestError, load_manifest
from shared.provenance import code_version
from tools.devices.driver import drive
from tools.devices.population import beta_levels, make_devices
from tools.devices.report import by_device, device_spread, summarise, write_devices_csv
from tools.devices.symbols import SymbolBook
from tools.devices.transports import TRANSPORTS
from tools.stack import REPO, Stack

KEY = (
    "devices",
    "edge_replicas",
    "rate_per_device_per_s",
    "edge_batching",
    "concurrency",
    "channel_flags",
    "transport",
    "edge_flags",
)
SWITCH = {"on": True, "off": False}


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,2; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1 like 1,2; got {text!r}")
    return values


def switch_list(text: str) -> list[bool]:
    """``on,off`` -> [True, False]: the channel's edge batching, one run each."""
    try:
        values = [SWITCH[part.strip()] for part in text.split(",") if part.strip()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected on, off or on,off; got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected on, off or on,off; got {text!r}")
    return values


def transport_list(text: str) -> list[str]:
    """``unary,stream`` -> ["unary", "stream"]: how the devices reach the channel, one run each."""
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values or not set(values) <= set(TRANSPORTS):
        raise argparse.ArgumentTypeError(f"expected unary, stream or unary,stream; got {text!r}")
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
    p.add_argument(
        "--edge-batching",
        type=switch_list,
        default=[True, False],
        help="the channel's --edge-batching, one run each, same load (default on,off)",
    )
    p.add_argument(
        "--transport",
        type=transport_list,
        default=["unary"],
        help="how each device reaches the channel: a unary Transmit call per request, or one "
        "TransmitStream per device; a list runs each against a fresh stack (default unary)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="closed loop at saturation instead of the Poisson schedule: this many requests "
        "always out, for --duration-s (0: open loop at --rate)",
    )
    p.add_argument(
        "--channel-flag",
        action="append",
        default=[],
        help="one more flag for the channel (repeat), e.g. --channel-flag=--edge-in-flight=4",
    )
    p.add_argument(
        "--edge-flags",
        action="append",
        help="edge flags of one setting, space-separated, e.g. --edge-flags='--inline-decode-max "
        "8'; repeat to compare settings (each against a fresh stack, same load; '' = the "
        "defaults). Default: one setting with none",
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


BATCH_HISTOGRAMS = {
    "channel_to_edge": "coinference_channel_edge_batch_size",  # transmissions per edge call
    "decoder": "coinference_edge_batch_size",  # requests per decoder call (every replica)
}


def batch_counts(metrics_urls: list[str]) -> dict[str, list[float]]:
    """[sum, count] of each batch-size histogram over the services' /metrics pages."""
    totals = {name: [0.0, 0.0] for name in BATCH_HISTOGRAMS}
    for url in metrics_urls:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        for line in text.splitlines():
            for name, metric in BATCH_HISTOGRAMS.items():
                for i, suffix in enumerate(("_sum", "_count")):
                    if line.startswith(metric + suffix + " "):
                        totals[name][i] += float(line.split()[-1])
    return totals


def mean_batches(before: dict, after: dict) -> dict[str, float | None]:
    """Mean batch size of each histogram between two :func:`batch_counts`."""
    means = {}
    for name in BATCH_HISTOGRAMS:
        items, calls = (after[name][i] - before[name][i] for i in (0, 1))
        means[name] = items / calls if calls else None
    return means


def run_once(args, target: str, n_devices: int, replicas: int, batching, book, procs: dict,
             metrics_urls: list[str] = (), transport: str = "unary",
             edge_flags: str = ""):  # fmt: skip
    """One load run against ``target``; the row for results.json (and the device rows)."""
    betas = book.betas
    devices = make_devices(n_devices, args.rate, betas, args.psnr_low, args.psnr_high,
                           seed=args.seed)  # fmt: skip
    load_before = os.getloadavg()
    before = {name: cpu_seconds(pid) for name, pid in procs.items()}
    driver_before = time.process_time()
    batches_before = batch_counts(metrics_urls)
    load = drive(target, devices, book, args.duration_s, args.deadline_s, args.seed,
                 concurrency=args.concurrency, transport=transport)  # fmt: skip
    records, run_s = asyncio.run(load)
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in procs.items()}
    cpu["driver"] = time.process_time() - driver_before
    batches = mean_batches(batches_before, batch_counts(metrics_urls))
    summary = summarise(records, run_s)
    rows = by_device(records, devices, run_s)
    answered = max(summary["answered"], 1)
    cpu_ms = {name: 1e3 * s / answered for name, s in cpu.items()}
    serving = [name for name in cpu_ms if name != "driver"]
    row = {
        "devices": n_devices,
        "edge_replicas": replicas,
        "rate_per_device_per_s": args.rate,
        "edge_batching": batching,
        "concurrency": args.concurrency,
        "channel_flags": " ".join(args.channel_flag),
        "transport": transport,
        "edge_flags": edge_flags,
        "offered_per_s": None if args.concurrency else sum(d.rate_per_s for d in devices),
        "duration_s": args.duration_s,
        "run_s": run_s,
        **summary,
        **device_spread(rows),
        "cpu_s": cpu,
        "cpu_ms_per_answer": cpu_ms,
        "channel_edge_cpu_ms_per_answer": sum(cpu_ms[name] for name in serving),
        "mean_batch": batches,
        "model": Path(args.model).name,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
    }
    return row, rows


def start_stack(args, replicas: int, batching: bool, edge_flags: str = "") -> Stack:
    """R edge replicas (with ``edge_flags``) and a channel with ``--edge-batching`` on or
    off (metrics ports on)."""
    flags = ["--edge-batching", "on" if batching else "off", *args.channel_flag]
    stack = Stack(args.model, None, edge_replicas=replicas, metrics_ports=True,
                  channel_flags=flags, edge_flags=shlex.split(edge_flags))  # fmt: skip
    stack.start(("edge", "channel"))
    return stack


def run_name(row: dict) -> str:
    """The per-device CSV's name for a row."""
    batching = {True: "-batched", False: "-unbatched", None: ""}[row["edge_batching"]]
    load = (
        f"c{row['concurrency']}" if row["concurrency"] else f"rate{row['rate_per_device_per_s']:g}"
    )
    option = ""
    for who, prefix in (("channel", ""), ("edge", "edge-")):
        flags = re.sub(r"[^a-z0-9.]+", "-", row.get(f"{who}_flags", "")).strip("-")
        if flags:
            option += f"-{prefix}{flags}"
    stream = "-stream" if row.get("transport") == "stream" else ""
    return f"devices-{row['devices']}x{row['edge_replicas']}{batching}{option}{stream}-{load}.csv"


def merge_rows(path: Path, new_rows: list[dict]) -> list[dict]:
    """Earlier rows of ``path`` with a different key, then the new ones."""
    old = json.loads(path.read_text())["runs"] if path.is_file() else []
    keys = {tuple(r.get(k) for k in KEY) for r in new_rows}
    return [r for r in old if tuple(r.get(k) for k in KEY) not in keys] + new_rows


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.rate <= 0 or args.duration_s <= 0:
        parser().error("--rate and --duration-s must be > 0")
    if args.concurrency < 0:
        parser().error("--concurrency must be >= 0")
    if args.beta_levels < 1 or args.images < 1:
        parser().error("--beta-levels and --images must be >= 1")
    out = Path(args.out)
    try:
        manifest = load_manifest(args.model)
        betas = beta_levels(manifest.beta_range, args.beta_levels)
        book = SymbolBook(args.model, betas, args.images, data_dir=args.data_dir)
    except (ManifestError, OSError, ValueError) as exc:  # no model, no data, bad values
        parser().error(str(exc))
    code = code_version()  # the commit these runs measure (dirty: uncommitted changes)
    results = []
    variants = args.edge_flags or [""]
    settings = [(0, None, transport, "") for transport in args.transport] if args.channel else [
        (replicas, batching, transport, edge_flags) for replicas in args.edge_replicas
        for batching in args.edge_batching for transport in args.transport
        for edge_flags in variants
    ]  # fmt: skip
    for replicas, batching, transport, edge_flags in settings:
        stack = None
        target, procs, metrics_urls = args.channel, {}, []
        if not args.channel:  # a fresh stack per setting: R edge replicas + channel
            stack = start_stack(args, replicas, batching, edge_flags)
            target = stack.channel_target
            procs = {name: p.pid for name, p in stack.procs.items()}
            metrics_urls = [f"http://127.0.0.1:{port}/metrics"
                            for port in stack.metrics_ports.values()]  # fmt: skip
        try:
            for n_devices in args.devices:
                row, device_rows = run_once(args, target, n_devices, replicas, batching, book,
                                            procs, metrics_urls, transport,
                                            edge_flags)  # fmt: skip
                results.append(row)
                write_devices_csv(device_rows, out / run_name(row))
                shown = (*KEY, "offered_per_s", "throughput_per_s", "p50_s", "p99_s",
                         "accuracy", "errors", "per_replica", "cpu_ms_per_answer",
                         "mean_batch")  # fmt: skip
                print(json.dumps({k: row[k] for k in shown}), flush=True)
        finally:
            if stack is not None:
                stack.stop()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    for row in results:
        row["code"] = code
    path.write_text(json.dumps({"runs": merge_rows(path, results)}, indent=2) + "\n")
    print(f"wrote {path}")
    return 0
