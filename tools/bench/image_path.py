"""``python -m tools.bench.image_path``: the image (reconstruction) path against the
classification path through the same live stack, in one run, as ratios.

For each model (a classification model and an image model), one stack (edge on CPU,
channel at 10 dB, device) and its device's ``POST /v1/infer`` with the Python closed-loop
generator: C=1 for the device span (the reply's ``latency_s.total``, p50) and the HTTP
round trip, then C=16 for throughput. The image path does more per request: 128 float
symbols instead of a quantized handful, a 784-value reconstruction back over gRPC, the
device's PSNR / SSIM and two PNGs. Targets: the image path's C=1 device span <= 1.5× the
classification path's, its C=16 throughput >= 0.5× (printed, written to JSON).

    python -m tools.bench.image_path --classification artifacts/test-quick \\
        --image artifacts/test-quick-image --out reports/bench/image-path.json
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

SPAN_RATIO_MAX = 1.5
THROUGHPUT_RATIO_MIN = 0.5


def measure(model_dir: Path, samples, duration_s: float) -> dict:
    with running_stack(model_dir, 10.0, edge_flags=["--device", "cpu"]) as stack:
        asyncio.run(device_level(stack.url, samples, 1, 1.0, 10.0))  # warm-up
        c1, _ = asyncio.run(device_level(stack.url, samples, 1, duration_s, 10.0))
        c16, window = asyncio.run(device_level(stack.url, samples, 16, duration_s, 10.0))
    ok1 = [r for r in c1 if r["ok"]]
    ok16 = [r for r in c16 if r["ok"]]
    return {
        "model": str(model_dir),
        "c1_requests": len(c1),
        "c1_failed": len(c1) - len(ok1),
        "c1_device_span_p50_ms": 1e3 * float(np.median([r["stages"]["total"] for r in ok1])),
        "c1_http_p50_ms": 1e3 * float(np.median([r["latency_s"] for r in ok1])),
        "c16_requests": len(c16),
        "c16_failed": len(c16) - len(ok16),
        "c16_throughput_rps": len(ok16) / window,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classification", type=Path, default=Path("artifacts/test-quick"))
    parser.add_argument("--image", type=Path, default=Path("artifacts/test-quick-image"))
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per level")
    parser.add_argument("--out", type=Path, default=Path("reports/bench/image-path.json"))
    args = parser.parse_args(argv)
    images, labels = load_test_set(None, 200)
    samples = [(png_bytes(img), int(lab)) for img, lab in zip(images, labels, strict=True)]
    results = {
        "classification": measure(args.classification, samples, args.duration),
        "image": measure(args.image, samples, args.duration),
    }
    cls, img = results["classification"], results["image"]
    span = img["c1_device_span_p50_ms"] / cls["c1_device_span_p50_ms"]
    throughput = img["c16_throughput_rps"] / cls["c16_throughput_rps"]
    results["ratios"] = {
        "c1_device_span": span,
        "c1_device_span_target_max": SPAN_RATIO_MAX,
        "c16_throughput": throughput,
        "c16_throughput_target_min": THROUGHPUT_RATIO_MIN,
    }
    results["code"] = code_version()
    for name, r in (("classification", cls), ("image", img)):
        print(f"{name:>14}: C=1 device span p50 {r['c1_device_span_p50_ms']:.3f} ms, HTTP p50 "
              f"{r['c1_http_p50_ms']:.3f} ms; C=16 {r['c16_throughput_rps']:.0f} req/s "
              f"({r['c1_failed'] + r['c16_failed']} failed)")  # fmt: skip
    print(f"image / classification: C=1 span {span:.2f}x (target <= {SPAN_RATIO_MAX}), "
          f"C=16 throughput {throughput:.2f}x (target >= {THROUGHPUT_RATIO_MIN})")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    failed = cls["c1_failed"] + cls["c16_failed"] + img["c1_failed"] + img["c16_failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
