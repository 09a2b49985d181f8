"""Where the CPU goes under load: py-spy on device, channel and edge while hey drives C=64.

    .venv/bin/pip install py-spy && .venv/bin/python -m tools.investigations.profile [--model DIR]

Starts the stack (tools.stack), runs hey for ``--seconds`` at ``--concurrency``, records each
process with ``py-spy record --format raw`` for 8 s in the middle, and prints the frames with
the most samples of their own per process (reports/bench/profile.txt with ``--out``).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.bench.cli import resolve_model
from tools.stack import running_stack

SERVICES = ("device", "channel", "edge")


def top_frames(raw: Path, n: int = 8) -> tuple[int, list[tuple[float, str]]]:
    """(total samples, [(% of samples, leaf frame)]) from py-spy's raw (collapsed) output."""
    counts: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        counts[stack.split(";")[-1]] += int(samples)
    total = sum(counts.values())
    return total, [(100 * k / max(total, 1), frame) for frame, k in counts.most_common(n)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.investigations.profile", description=__doc__)
    p.add_argument("--model", default=None)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--seconds", type=int, default=14)
    p.add_argument("--out", default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists() or shutil.which("hey") is None:
        print("needs py-spy (pip install py-spy) and hey (apt-get install hey)", file=sys.stderr)
        return 2
    from client.http import png_bytes
    from shared.idx import load_test_set

    work = Path(tempfile.mkdtemp(prefix="profile-"))
    body = work / "image.png"
    body.write_bytes(png_bytes(load_test_set(None, 1)[0][0]))
    model = resolve_model(Path(args.model) if args.model else None, train=True, data_dir=None)
    with running_stack(model, 20.0, device_flags=["--log-level", "warning"]) as stack:
        load = subprocess.Popen(
            ["hey", "-z", f"{args.seconds}s", "-c", str(args.concurrency), "-m", "POST",
             "-T", "image/png", "-D", str(body), f"{stack.url}/v1/infer"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(3)
        spies = [
            subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "-p",
                    str(stack.procs[name].pid),
                    "-d",
                    "8",
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(work / f"{name}.txt"),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for name in SERVICES
        ]
        for spy in spies:
            spy.wait()
        hey_out, _ = load.communicate()
    lines = [line.strip() for line in hey_out.splitlines() if "Requests/sec" in line]
    lines += [f"py-spy, 8 s at 200 Hz, C={args.concurrency} (hey):"]
    for name in SERVICES:
        total, frames = top_frames(work / f"{name}.txt")
        lines.append(f"== {name}: {total} samples; frames with the most samples of their own")
        lines += [f"  {share:5.1f}%  {frame[:110]}" for share, frame in frames]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
