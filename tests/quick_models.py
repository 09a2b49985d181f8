"""The suite's quick models: real models trained once per source version into ``artifacts/``
and shared by every test that serves or evaluates one (the fixtures in tests/conftest.py and
tests/digital/conftest.py).

``python -m tests.quick_models`` (``make test`` runs it first) trains every one that is
missing or stale in two lanes, one torch thread each, so that both cores train while no test
waits; the fixtures then find them stamped. A test run without it trains each model on first
use instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK_DIR = ROOT / "artifacts" / "test-quick"
QUICK_ARGS = ["--quick", "--bits", "4", "--seed", "0", "--no-progress"]
# VL-VFE quick model: variable length, β fixed per model, trained over 10-25 dB
QUICK_VL_DIR = ROOT / "artifacts" / "test-quick-vl"
QUICK_VL_ARGS = [
    "--quick", "--variable-length", "--prior", "log-uniform", "--fixed-beta", "1e-2",
    "--snr-min", "10", "--snr-max", "25", "--kl-warmup-epochs", "1", "--seed", "0",
    "--no-progress",
]  # fmt: skip
# QML-IB multi-link quick model: K = 2 views (left/right halves), 4 bits, tiny and fast
QUICK_MULTI_DIR = ROOT / "artifacts" / "test-quick-multi"
QUICK_MULTI_ARGS = [
    "--n-links", "2", "--bits", "4", "--d", "16", "--hidden", "64", "--epochs", "2",
    "--train-subset", "6000", "--lr", "3e-3", "--beta-min", "1e-4", "--beta-max", "1e-1",
    "--seed", "0", "--no-progress",
]  # fmt: skip
# Image JSCC quick model (Hyper-AJSCC, R = 1/12, 0-20 dB): task "reconstruction"; one torch
# thread (train-image sets its own count, 2 by default)
QUICK_IMAGE_DIR = ROOT / "artifacts" / "test-quick-image"
QUICK_IMAGE_ARGS = ["--quick", "--epochs", "1", "--train-subset", "6000", "--seed", "0",
                    "--no-progress", "--n-eval", "200", "--threads", "1"]  # fmt: skip
# the entropy-coded model: the quick model fine-tuned with its code length (~15 s)
DIGITAL_DIR = ROOT / "artifacts" / "test-quick-digital"
DIGITAL_ARGS = ["--epochs", "2", "--train-subset", "10000", "--no-progress"]


def _stamp(words: list[str], sources: list[Path]) -> str:
    """A short digest of a training's arguments (and what else it depends on) and the bytes
    of the sources it runs: a model is retrained when either changes."""
    digest = hashlib.sha256(" ".join(words).encode())
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _source_stamp(args: list[str]) -> str:
    return _stamp(
        args, [p for f in ("shared/nn", "trainer") for p in sorted((ROOT / f).rglob("*.py"))]
    )


def _digital_stamp(base: Path) -> str:
    """The fine-tune's arguments, the base model's id and the sources it runs."""
    model_id = json.loads((base / "manifest.json").read_text())["model_id"]
    sources = [ROOT / "trainer" / n for n in ("entropy_finetune.py", "train.py", "export.py")]
    sources += [ROOT / "shared" / "entropy.py", *sorted((ROOT / "shared" / "nn").rglob("*.py"))]
    return _stamp([*DIGITAL_ARGS, model_id], sources)


@contextmanager
def artifact_lock(out_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock of one quick model (``.<name>.lock`` beside ``out_dir``): the
    suite runs in several pytest-xdist workers; the first to need a shared quick model trains
    it while the others wait and then reuse it. Two different models may train at once, each
    on its worker's share of the cores (tests/conftest.py sets OMP_NUM_THREADS per worker)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(out_dir.parent / f".{out_dir.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_unless_stamped(out_dir: Path, stamp: str, cmd: list[str]) -> None:
    stamp_file = out_dir / ".source-stamp"
    if (out_dir / "manifest.json").is_file() and stamp_file.is_file():
        if stamp_file.read_text() == stamp:
            return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "trainer", *cmd, "--out", str(out_dir)],
                            cwd=ROOT, capture_output=True, text=True, env=env)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"quick training failed ({' '.join(cmd[:1])} -> {out_dir.name}):\n"
                           f"{result.stdout}\n{result.stderr}")  # fmt: skip
    stamp_file.write_text(stamp)


def trained_model(out_dir: Path, args: list[str], command: str = "train") -> Path:
    """Train ``python -m trainer <command> <args>`` into out_dir unless the same source and
    args already did (a stamp of both is kept beside the artifacts)."""
    with artifact_lock(out_dir):
        stamp = _source_stamp(args if command == "train" else [command, *args])
        _run_unless_stamped(out_dir, stamp, [command, *args])
    return out_dir


def quick() -> Path:
    """artifacts/test-quick: a real 4-bit quick Fashion-MNIST model (~40 s on one thread)."""
    return trained_model(QUICK_DIR, QUICK_ARGS)


def quick_vl() -> Path:
    """artifacts/test-quick-vl: a real variable-length (VL-VFE) quick model (~30 s)."""
    return trained_model(QUICK_VL_DIR, QUICK_VL_ARGS)


def quick_multi() -> Path:
    """artifacts/test-quick-multi: a real K = 2 multi-link quick model (encoder-link<k>.onnx)."""
    return trained_model(QUICK_MULTI_DIR, QUICK_MULTI_ARGS)


def quick_image() -> Path:
    """artifacts/test-quick-image: a real image JSCC quick model (task reconstruction)."""
    return trained_model(QUICK_IMAGE_DIR, QUICK_IMAGE_ARGS, command="train-image")


def quick_digital() -> Path:
    """artifacts/test-quick-digital: the quick model fine-tuned with its code length
    (python -m trainer digital), rebuilt when the sources or the base model change."""
    base = quick()
    with artifact_lock(DIGITAL_DIR):
        cmd = ["digital", "--base", str(base), *DIGITAL_ARGS]
        _run_unless_stamped(DIGITAL_DIR, _digital_stamp(base), cmd)
    return DIGITAL_DIR


# two lanes of about equal length on one thread each (seconds on this project's 2-core machine:
# quick 40 + digital 15; variable length 30 + multi-link 10 + image 10)
LANES = ((quick, quick_digital), (quick_vl, quick_multi, quick_image))


def _lane(steps) -> list[str]:
    done = []
    for step in steps:
        start = time.perf_counter()
        path = step()
        done.append(f"{path.name} {time.perf_counter() - start:.0f} s")
    return done


def main() -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    print(f"quick models: training what is missing or stale in {len(LANES)} lanes", flush=True)
    with ThreadPoolExecutor(len(LANES)) as pool:
        lanes = list(pool.map(_lane, LANES))
    print(f"quick models ready in {time.perf_counter() - start:.0f} s: "
          + "; ".join(", ".join(lane) for lane in lanes), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
