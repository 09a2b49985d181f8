"""``python -m tools.soak``: a long closed-loop run through the live stack, watching errors,
latency over time and each process's memory.

    python -m tools.soak                        # 100,000 requests at C=8 (the issue's soak)
    python -m tools.soak --requests 3000        # the short version the tests run

Starts edge, channel and device on free loopback ports (``tools/stack.py``) on a trained
model: ``--model DIR``, else ``artifacts/quick`` or ``artifacts/test-quick``, else a quick
4-bit model is trained into ``artifacts/quick`` (as ``python -m tools.bench`` does). C
clients (one ``httpx.AsyncClient``, a pool of C connections) send pre-encoded PNG bytes of
Fashion-MNIST test images to ``POST /v1/infer``, each its next request as soon as the last
answer arrives, until N requests are answered.

Reports, by completed request count:

- errors by HTTP status (or by the client exception when there was no answer);
- p50/p99 latency (ms) and throughput in each of ``--windows`` equal windows (10 % each);
- the resident set size (``VmRSS`` in ``/proc/<pid>/status``) of the device, channel and
  edge, sampled every ``--rss-interval-s`` and at the window edges;
- RSS growth after warm-up per process: RSS at the end / RSS after the first
  ``--warmup-fraction`` of the requests (default 10 %) - 1.

Writes ``<out>/results.json`` and ``<out>/soak.png`` (p50/p99 and RSS vs requests; default
out: ``reports/soak``) and prints a table. Exit code: 0 when there were no errors and every
process's RSS growth is below ``--max-rss-growth`` (default 10 %), 1 otherwise, 2 for a
usage problem (no model, no data).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from client.http import png_bytes
from shared.idx import load_test_set
from tools.bench.cli import UsageError, resolve_model
from tools.stack import REPO, SERVICES, Stack, repo_relative

PROCESSES = ("device", "channel", "edge")


def rss_kib(pid: int) -> int | None:
    """VmRSS of process ``pid`` in KiB (``/proc/<pid>/status``); None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class Soak:
    """N requests at concurrency C against ``url``; latencies, statuses and RSS samples."""

    def __init__(self, url: str, bodies: Sequence[bytes], pids: dict[str, int], args) -> None:
        self.url = url
        self.bodies = bodies
        self.pids = pids
        self.n = args.requests
        self.concurrency = args.concurrency
        self.timeout_s = args.timeout_s
        self.rss_interval_s = args.rss_interval_s
        self.latency_s = np.full(self.n, np.nan)  # by completion order
        self.done_at = np.full(self.n, np.nan)  # s since the start, by completion order
        self.outcome: list[str] = [""] * self.n  # "200", "503", "ReadTimeout", ...
        # request counts at which RSS is sampled besides the timer: the window edges
        self.marks = sorted({round(self.n * k / args.windows) for k in range(1, args.windows)}
                            | {round(self.n * args.warmup_fraction)})  # fmt: skip
        self.rss: list[dict[str, Any]] = []
        self.completed = 0
        self.started = 0
        self.t0 = 0.0

    def sample_rss(self, mark: str = "timer") -> None:
        row = {"requests": self.completed, "t_s": time.perf_counter() - self.t0, "mark": mark}
        row.update({name: rss_kib(pid) for name, pid in self.pids.items()})
        self.rss.append(row)

    async def _sampler(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample_rss()
            try:
                await asyncio.wait_for(stop.wait(), self.rss_interval_s)
            except TimeoutError:
                pass

    async def _worker(self, client: httpx.AsyncClient, progress) -> None:
        headers = {"Content-Type": "image/png"}
        while self.started < self.n:
            i = self.started
            self.started += 1
            body = self.bodies[i % len(self.bodies)]
            t = time.perf_counter()
            try:
                response = await client.post("/v1/infer", content=body, headers=headers)
                outcome = str(response.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            now = time.perf_counter()
            k = self.completed
            self.completed += 1
            self.latency_s[k] = now - t
            self.done_at[k] = now - self.t0
            self.outcome[k] = outcome
            if self.marks and self.completed == self.marks[0]:
                self.marks.pop(0)
                self.sample_rss("window")
            progress(self.completed)

    async def run(self) -> float:
        """Send the requests; returns the elapsed time (s)."""
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        step = max(self.n // 20, 1)

        def progress(done: int) -> None:
            if done % step == 0 or done == self.n:
                elapsed = time.perf_counter() - self.t0
                errors = sum(o != "200" for o in self.outcome[:done])
                print(f"soak: {done:>7}/{self.n} requests, {elapsed:6.1f} s, "
                      f"{done / elapsed:6.1f} req/s, {errors} errors", flush=True)  # fmt: skip

        async with httpx.AsyncClient(
            base_url=self.url, timeout=self.timeout_s, limits=limits
        ) as client:
            self.t0 = time.perf_counter()
            self.sample_rss("start")
            stop = asyncio.Event()
            sampler = asyncio.create_task(self._sampler(stop))
            await asyncio.gather(*(self._worker(client, progress) for _ in range(self.concurrency)))
            elapsed = time.perf_counter() - self.t0
            self.sample_rss("end")
            stop.set()
            await sampler
        return elapsed


# --- statistics ---------------------------------------------------------------------------------
def _ms(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q) * 1e3) if values.size else None


def window_rows(soak: Soak, windows: int) -> list[dict[str, Any]]:
    """p50/p99 latency (ms), errors and throughput in each window of completed requests."""
    rows = []
    edges = [round(soak.n * k / windows) for k in range(windows + 1)]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        outcomes = soak.outcome[lo:hi]
        ok = np.array([o == "200" for o in outcomes])
        latency = soak.latency_s[lo:hi][ok]
        t_lo = soak.done_at[lo - 1] if lo else 0.0
        span = float(soak.done_at[hi - 1] - t_lo)
        rows.append({
            "requests": [lo, hi],
            "errors": int((~ok).sum()),
            "p50_ms": _ms(latency, 50),
            "p99_ms": _ms(latency, 99),
            "throughput_per_s": (hi - lo) / span if span > 0 else None,
        })  # fmt: skip
    return rows


def rss_growth(soak: Soak, warmup_requests: int) -> dict[str, dict[str, Any]]:
    """Per process: RSS (KiB) at the first sample at/after warm-up, at the end, growth."""
    after_warmup = next(row for row in soak.rss if row["requests"] >= warmup_requests)
    end = soak.rss[-1]
    growth = {}
    for name in soak.pids:
        base, last = after_warmup[name], end[name]
        growth[name] = {
            "rss_start_kib": soak.rss[0][name],
            "rss_after_warmup_kib": base,
            "rss_end_kib": last,
            "rss_peak_kib": max(row[name] or 0 for row in soak.rss),
            "growth": (last / base - 1) if base and last else None,
        }
    return growth


# --- output -------------------------------------------------------------------------------------
def render_table(results: dict[str, Any]) -> str:
    lines = [
        f"soak: {results['requests']} requests at C={results['concurrency']} in "
        f"{results['elapsed_s']:.0f} s ({results['throughput_per_s']:.0f} req/s), "
        f"errors: {results['errors']} {results['errors_by_status'] or ''}",
        "",
        f"{'window (requests)':>20} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}",
    ]
    for row in results["windows"]:
        lo, hi = row["requests"]
        p50 = f"{row['p50_ms']:.1f}" if row["p50_ms"] is not None else "-"
        p99 = f"{row['p99_ms']:.1f}" if row["p99_ms"] is not None else "-"
        rate = f"{row['throughput_per_s']:.0f}" if row["throughput_per_s"] else "-"
        lines.append(f"{f'{lo}-{hi}':>20} {row['errors']:>7} {p50:>8} {p99:>8} {rate:>7}")
    lines += ["", f"{'process':>8} {'RSS start':>10} {'warm-up':>10} {'end':>10} {'peak':>10} "
              f"{'growth':>8}   (MiB; growth = end / after warm-up - 1)"]  # fmt: skip
    for name, row in results["rss"].items():

        def mib(kib):
            return f"{kib / 1024:.1f}" if kib else "-"

        growth = f"{row['growth'] * 100:+.2f}%" if row["growth"] is not None else "-"
        lines.append(f"{name:>8} {mib(row['rss_start_kib']):>10} "
                     f"{mib(row['rss_after_warmup_kib']):>10} {mib(row['rss_end_kib']):>10} "
                     f"{mib(row['rss_peak_kib']):>10} {growth:>8}")  # fmt: skip
    lines += ["", "verdict: " + ("PASS" if results["passed"] else "FAIL: " + "; ".join(
        results["failures"]))]  # fmt: skip
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat_ax, rss_ax) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    windows = results["windows"]
    mid = [sum(row["requests"]) / 2 for row in windows]
    for key, style in (("p50_ms", "o-"), ("p99_ms", "s--")):
        values = [row[key] if row[key] is not None else np.nan for row in windows]
        lat_ax.plot(mid, values, style, label=key.replace("_ms", ""))
    lat_ax.set_ylabel("latency per window, ms")
    lat_ax.set_ylim(bottom=0)
    lat_ax.grid(alpha=0.3)
    lat_ax.legend()
    lat_ax.set_title(
        f"soak: {results['requests']} requests, C={results['concurrency']}, "
        f"{results['errors']} errors"
    )
    samples = results["rss_samples"]
    x = [row["requests"] for row in samples]
    for name in PROCESSES:
        y = [row[name] / 1024 if row[name] else np.nan for row in samples]
        growth = results["rss"][name]["growth"]
        label = f"{name} ({growth * 100:+.1f}% after warm-up)" if growth is not None else name
        rss_ax.plot(x, y, label=label)
    rss_ax.axvline(results["warmup_requests"], color="grey", linestyle=":", label="warm-up end")
    rss_ax.set_xlabel("requests completed")
    rss_ax.set_ylabel("RSS, MiB")
    rss_ax.grid(alpha=0.3)
    rss_ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--requests", type=int, default=100_000, help="N requests (default 100000)")
    p.add_argument("--concurrency", type=int, default=8, help="C clients (default 8)")
    p.add_argument("--model", type=Path, default=None,
                   help="model folder; default: artifacts/quick, else artifacts/test-quick, "
                        "else train a quick 4-bit one into artifacts/quick")  # fmt: skip
    p.add_argument("--no-train", action="store_true", help="never train; fail with a hint")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    p.add_argument("--images", type=int, default=1000, help="distinct test images cycled")
    p.add_argument("--psnr", type=float, default=20.0, help="channel PSNR, dB")
    p.add_argument("--windows", type=int, default=10, help="latency windows (default 10)")
    p.add_argument("--warmup-fraction", type=float, default=0.1,
                   help="RSS growth is measured from this fraction of the run (0.1)")  # fmt: skip
    p.add_argument("--max-rss-growth", type=float, default=0.10,
                   help="fail at this growth after warm-up (0.10 = 10%%)")  # fmt: skip
    p.add_argument("--rss-interval-s", type=float, default=1.0, help="RSS sampling period, s")
    p.add_argument("--timeout-s", type=float, default=10.0, help="client timeout per request")
    p.add_argument("--out", type=Path, default=REPO / "reports" / "soak")
    return p


def check_args(args: argparse.Namespace) -> None:
    if args.requests < 1 or args.concurrency < 1 or args.images < 1 or args.windows < 1:
        raise UsageError("--requests, --concurrency, --images and --windows must be >= 1")
    if not 0 < args.warmup_fraction < 1:
        raise UsageError(f"--warmup-fraction must be in (0, 1), got {args.warmup_fraction}")
    if args.rss_interval_s <= 0 or args.timeout_s <= 0:
        raise UsageError("--rss-interval-s and --timeout-s must be > 0")


def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    check_args(args)
    model_dir = resolve_model(args.model, not args.no_train, args.data_dir)
    try:
        images, _labels = load_test_set(args.data_dir, args.images)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    bodies = [png_bytes(image) for image in images]
    quiet = ["--log-level", "warning"]
    with Stack(model_dir, args.psnr, edge_flags=quiet, channel_flags=quiet,
               device_flags=quiet) as stack:  # fmt: skip
        stack.start()
        pids = {name: stack.procs[name].pid for name in PROCESSES}
        print(f"soak: stack up (model {model_dir}, pids {pids}); {args.requests} requests "
              f"at C={args.concurrency}", flush=True)  # fmt: skip
        soak = Soak(stack.url, bodies, pids, args)
        elapsed = asyncio.run(soak.run())
        alive = {name: stack.procs[name].alive() for name in SERVICES}

    warmup_requests = round(args.requests * args.warmup_fraction)
    errors = Counter(o for o in soak.outcome if o != "200")
    growth = rss_growth(soak, warmup_requests)
    failures = []
    if errors:
        failures.append(f"{sum(errors.values())} errors {dict(errors)}")
    for name, row in growth.items():
        if row["growth"] is None:
            failures.append(f"{name}: no RSS reading (process gone?)")
        elif row["growth"] >= args.max_rss_growth:
            failures.append(f"{name} RSS grew {row['growth'] * 100:.1f}% after warm-up "
                            f"(limit {args.max_rss_growth * 100:g}%)")  # fmt: skip
    if not all(alive.values()):
        failures.append(f"a process exited during the soak: {alive}")
    ok = np.array([o == "200" for o in soak.outcome])
    settings = {k: (repo_relative(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return {
        "settings": {**settings, "model": repo_relative(model_dir)},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },  # fmt: skip
        "requests": args.requests,
        "concurrency": args.concurrency,
        "elapsed_s": elapsed,
        "throughput_per_s": args.requests / elapsed,
        "errors": int(sum(errors.values())),
        "errors_by_status": dict(errors),
        "latency_ms": {"p50": _ms(soak.latency_s[ok], 50), "p99": _ms(soak.latency_s[ok], 99)},
        "windows": window_rows(soak, args.windows),
        "warmup_requests": warmup_requests,
        "rss": growth,
        "rss_samples": soak.rss,
        "max_rss_growth": args.max_rss_growth,
        "failures": failures,
        "passed": not failures,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        results = run_soak(args)
    except UsageError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out / "soak.png")
    print()
    print(render_table(results))
    print(f"\nwrote {args.out}/results.json and {args.out}/soak.png")
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
