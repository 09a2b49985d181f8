"""CPU per request of each service under a fixed load: a figure that, unlike throughput,
hardly moves when other jobs share the cores.

    python -m tools.investigations.cpu [--model DIR] [--requests 4000] [--concurrency 1,16,64]

Starts the stack (tools.stack), sends ``--requests`` PNG requests with ``hey`` at each
concurrency, and reads every process's CPU time (user + system, from /proc, per thread)
before and after: milliseconds of CPU per request for device, channel and edge, with the
threads that spent it. Linux only (``/proc``); needs ``hey`` (apt-get install hey).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from client.http import png_bytes
from shared.idx import load_test_set
from tools.stack import REPO, Stack

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of ``pid``, keyed ``name:tid``."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        out[f"{name}:{tid}"] = (int(fields[11]) + int(fields[12])) * _TICK_S
    return out


def cpu_per_request(before: dict, after: dict, requests: int) -> dict:
    """{"total_ms": ..., "threads_ms": {thread: ms}} per request, from two readings."""
    spent = Counter({k: after[k] - before.get(k, 0.0) for k in after})
    threads = {k: 1e3 * v / requests for k, v in spent.most_common() if v > 0}
    return {"total_ms": sum(threads.values()), "threads_ms": threads}


def measure(
    model_dir: Path,
    requests: int,
    levels: Sequence[int],
    edge_flags: Sequence[str] = (),
    device_flags: Sequence[str] = (),
    data_dir: str | None = None,
) -> list[dict]:
    """One row per concurrency level: throughput and CPU ms per request of each service."""
    image, _ = load_test_set(data_dir, 1)
    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as body:
        body.write(png_bytes(image[0]))
    rows = []
    try:
        device_flags = ["--log-level", "warning", *device_flags]
        with Stack(model_dir, 20.0, edge_flags=edge_flags, device_flags=device_flags) as stack:
            stack.start()
            pids = {name: proc.pid for name, proc in stack.procs.items()}
            warm = ["hey", "-n", "200", "-c", "4", "-m", "POST", "-T", "image/png",
                    "-D", body.name, f"{stack.url}/v1/infer"]  # fmt: skip
            subprocess.run(warm, capture_output=True, check=True)
            for c in levels:
                sent = c * (requests // c)  # hey sends requests // c from each worker
                before = {name: thread_cpu_s(pid) for name, pid in pids.items()}
                start = time.perf_counter()
                run = subprocess.run(
                    ["hey", "-n", str(sent), "-c", str(c), "-m", "POST", "-T",
                     "image/png", "-D", body.name, f"{stack.url}/v1/infer"],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                elapsed = time.perf_counter() - start
                after = {name: thread_cpu_s(pid) for name, pid in pids.items()}
                ok = sum(int(line.split()[1]) for line in run.stdout.splitlines()
                         if line.strip().startswith("[200]"))  # fmt: skip
                row = {"concurrency": c, "requests": sent, "ok": ok,
                       "throughput_per_s": sent / elapsed}  # fmt: skip
                for name in pids:
                    row[name] = cpu_per_request(before[name], after[name], sent)
                row["sum_ms"] = sum(row[name]["total_ms"] for name in pids)
                rows.append(row)
                print(f"C={c:<3} {row['throughput_per_s']:7.0f} req/s  CPU ms per request: "
                      + "  ".join(f"{n} {row[n]['total_ms']:.3f}" for n in pids)
                      + f"  sum {row['sum_ms']:.3f}", flush=True)  # fmt: skip
    finally:
        Path(body.name).unlink(missing_ok=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.investigations.cpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--model", type=Path, default=REPO / "artifacts" / "test-quick")
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--edge-flag", action="append", default=[], help="extra edge flag (repeat)")
    p.add_argument(
        "--device-flag",
        action="append",
        default=[],
        help="extra device flag (repeat), e.g. --device-flag=--transmit-batch=1",
    )
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder (default: Debian's)")
    p.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    if shutil.which("hey") is None or not Path("/proc/self/task").is_dir():
        print("needs hey (apt-get install hey) and Linux /proc", file=sys.stderr)
        return 2
    if not (args.model / "manifest.json").is_file():
        print(f"no model in {args.model}: pass --model DIR", file=sys.stderr)
        return 2
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = measure(
        args.model, args.requests, levels, args.edge_flag, args.device_flag, args.data_dir
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
