"""Shared fixtures: the real quick models, trained once per source version and reused, and
the live stack of a test module (tests/live.py)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tools.stack import Stack

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


# Image JSCC quick model (Hyper-AJSCC, R = 1/12, 0-20 dB): task "reconstruction"
QUICK_IMAGE_DIR = ROOT / "artifacts" / "test-quick-image"
QUICK_IMAGE_ARGS = ["--quick", "--epochs", "1", "--train-subset", "6000", "--seed", "0",
                    "--no-progress", "--n-eval", "200"]  # fmt: skip


def _source_stamp(args: list[str]) -> str:
    digest = hashlib.sha256(" ".join(args).encode())
    for folder in ("shared/nn", "trainer"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@contextmanager
def artifact_lock(out_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock of the quick models (``.quick-models.lock`` beside ``out_dir``):
    the suite runs in several pytest-xdist workers; the first to need a shared quick model
    trains it while the others wait and then reuse it, and no two trainings run at once (two
    multi-threaded torch trainings on two cores slow each other down many times over)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(out_dir.parent / ".quick-models.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def trained_model(out_dir: Path, args: list[str], command: str = "train") -> Path:
    """Train ``python -m trainer <command> <args>`` into out_dir unless the same source and
    args already did (a stamp of both is kept beside the artifacts)."""
    with artifact_lock(out_dir):
        return _train_unless_stamped(out_dir, args, command)


def _train_unless_stamped(out_dir: Path, args: list[str], command: str) -> Path:
    stamp = _source_stamp(args if command == "train" else [command, *args])
    stamp_file = out_dir / ".source-stamp"
    if not (out_dir / "manifest.json").is_file() or (
        not stamp_file.is_file() or stamp_file.read_text() != stamp
    ):
        cmd = [sys.executable, "-m", "trainer", command, *args, "--out", str(out_dir)]
        result = subprocess.run(
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if result.returncode != 0:
            raise RuntimeError(f"quick training failed:\n{result.stdout}\n{result.stderr}")
        stamp_file.write_text(stamp)
    return out_dir


@pytest.fixture(scope="session")
def quick_model_dir() -> Path:
    """artifacts/test-quick: a real 4-bit quick Fashion-MNIST model (trained in ~30 s)."""
    return trained_model(QUICK_DIR, QUICK_ARGS)


@pytest.fixture(scope="session")
def quick_vl_model_dir() -> Path:
    """artifacts/test-quick-vl: a real variable-length (VL-VFE) quick model (~30 s)."""
    return trained_model(QUICK_VL_DIR, QUICK_VL_ARGS)


@pytest.fixture(scope="session")
def quick_multi_model_dir() -> Path:
    """artifacts/test-quick-multi: a real K = 2 multi-link quick model (encoder-link<k>.onnx)."""
    return trained_model(QUICK_MULTI_DIR, QUICK_MULTI_ARGS)


@pytest.fixture(scope="session")
def quick_image_model_dir() -> Path:
    """artifacts/test-quick-image: a real image JSCC quick model (task reconstruction)."""
    return trained_model(QUICK_IMAGE_DIR, QUICK_IMAGE_ARGS, command="train-image")


@pytest.fixture(scope="module")
def live_stack(request) -> Iterator[Stack]:
    """The test module's live stack (its ``LIVE_STACK``, a tests.live.LiveStackSpec): edge,
    channel and device processes serving the quick model it names, once for the module."""
    spec = request.module.LIVE_STACK
    with spec.running(request.getfixturevalue(spec.model)) as stack:
        yield stack


@pytest.fixture(scope="module")
def live_http(request, live_stack) -> Iterator[httpx.Client]:
    """An HTTP client of the live stack's device."""
    with request.module.LIVE_STACK.client(live_stack) as client:
        yield client
