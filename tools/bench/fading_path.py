"""``python -m tools.bench.fading_path``: the serving path's C=64 throughput with the channel's
block fading on against off, in one run, as a ratio.

One classification model, two stacks that differ only in the channel's ``--fading``
(none, then rayleigh; then both again, and the median of the two rounds per setting), the
device's ``POST /v1/infer`` driven by the Python closed-loop generator at C=64. Fading adds
per transmission one gain draw, the complex multiply and the equaliser
(``shared/fading.py``). Target: throughput with fading >= 0.9× without (printed, JSON).

    python -m tools.bench.fading_path --model artifacts/test-quick \\
        --out reports/bench/fading-path.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import numpy as np

from client.http import png_bytes
from shared.idx import load_test_set
from shared.provenance import code_version
from tools.bench.load import device_level
from tools.stack import running_stack

THROUGHPUT_RATIO_MIN = 0.9
CONCURRENCY = 64


def throughput(model_dir: Path, samples, duration_s: float, fading: str) -> dict:
    flags = ["--fading", fading, "--seed", 1]
    with running_stack(
        model_dir, 10.0, edge_flags=["--device", "cpu"], channel_flags=flags
    ) as stack:
        asyncio.run(device_level(stack.url, samples, CONCURRENCY, 1.0, 10.0))  # warm-up
        rows, window = asyncio.run(device_level(stack.url, samples, CONCURRENCY, duration_s, 10.0))
    ok = [r for r in rows if r["ok"]]
    return {
        "fading": fading,
        "requests": len(rows),
        "failed": len(rows) - len(ok),
        "throughput_rps": len(ok) / window,
        "channel_p50_ms": 1e3 * float(np.median([r["stages"]["channel"] for r in ok])),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("artifacts/test-quick"))
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs, alternated")
    parser.add_argument("--out", type=Path, default=Path("reports/bench/fading-path.json"))
    args = parser.parse_args(argv)
    images, labels = load_test_set(None, 200)
    samples = [(png_bytes(img), int(lab)) for img, lab in zip(images, labels, strict=True)]
    runs = []
    for _ in range(args.rounds):
        for fading in ("none", "rayleigh"):
            runs.append(throughput(args.model, samples, args.duration, fading))
            r = runs[-1]
            print(
                f"fading {fading:>8}: C={CONCURRENCY} {r['throughput_rps']:.0f} req/s, channel "
                f"p50 {r['channel_p50_ms']:.3f} ms ({r['failed']} failed)",
                flush=True,
            )
    median = {
        f: float(np.median([r["throughput_rps"] for r in runs if r["fading"] == f]))
        for f in ("none", "rayleigh")
    }
    ratio = median["rayleigh"] / median["none"]
    results = {
        "concurrency": CONCURRENCY,
        "runs": runs,
        "median_throughput_rps": median,
        "ratio": ratio,
        "ratio_target_min": THROUGHPUT_RATIO_MIN,
        "code": code_version(),
    }
    print(
        f"fading on / off: C={CONCURRENCY} throughput {ratio:.2f}x "
        f"(target >= {THROUGHPUT_RATIO_MIN})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 1 if any(r["failed"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
