"""The device's encoder timed at batch 1, 1 thread: ONNX Runtime here, PyTorch eager in a
subprocess (``scripts/edge_only.py time-encoder``: this package never imports torch)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np

from tools.bench.stats import percentiles
from tools.processes import PYTHON, REPO


def time_ort_encoder(model_dir: Path, beta: float, snr_db: float, n: int) -> list[float]:
    """Seconds per call of the device's ONNX Runtime encoder at batch 1, 1 thread."""
    from device.encoder import OnnxEncoder

    encoder = OnnxEncoder(model_dir, threads=1)
    shape = tuple(encoder.manifest.input_shape)
    xs = np.random.default_rng(0).standard_normal((n, *shape)).astype(np.float32)
    for i in range(min(100, n)):
        encoder.encode(xs[i : i + 1], beta, snr_db)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        encoder.encode(xs[i : i + 1], beta, snr_db)
        times.append(time.perf_counter() - t0)
    return times


def time_torch_encoder(model_dir: Path, beta: float, snr_db: float, n: int) -> list[float] | None:
    """The same in PyTorch eager, in a subprocess (scripts/edge_only.py needs torch)."""
    command = [PYTHON, str(REPO / "scripts" / "edge_only.py"), "time-encoder",
               "--model", str(model_dir), "--beta", str(beta), "--snr-db", str(snr_db),
               "--n", str(n)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        print(f"torch encoder timing failed (no torch?): {result.stderr[-500:]}", flush=True)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["torch_eager_s"]


def encoder_timings(model_dir: Path, beta: float, snr_db: float, calls: int) -> dict:
    """p50 and p99 seconds per call of both encoders (torch's None when it cannot run)."""
    ort = time_ort_encoder(model_dir, beta, snr_db, calls)
    torch_times = time_torch_encoder(model_dir, beta, snr_db, calls)
    return {
        "batch": 1, "threads": 1, "calls": calls,
        "ort_p50_s": float(np.median(ort)), "ort_p99_s": percentiles(ort)["p99"],
        "torch_p50_s": None if torch_times is None else float(np.median(torch_times)),
        "torch_p99_s": None if torch_times is None else percentiles(torch_times)["p99"],
    }  # fmt: skip
