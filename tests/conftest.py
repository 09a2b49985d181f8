"""Shared fixtures: one real quick model, trained once per source version and reused."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK_DIR = ROOT / "artifacts" / "test-quick"
QUICK_ARGS = ["--quick", "--bits", "4", "--seed", "0", "--no-progress"]


def _source_stamp() -> str:
    digest = hashlib.sha256(" ".join(QUICK_ARGS).encode())
    for folder in ("shared/nn", "trainer"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def quick_model_dir() -> Path:
    """artifacts/test-quick: a real 4-bit quick Fashion-MNIST model (trained in ~30 s)."""
    stamp = _source_stamp()
    stamp_file = QUICK_DIR / ".source-stamp"
    if not (QUICK_DIR / "manifest.json").is_file() or (
        not stamp_file.is_file() or stamp_file.read_text() != stamp
    ):
        cmd = [sys.executable, "-m", "trainer", "train", *QUICK_ARGS, "--out", str(QUICK_DIR)]
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
    return QUICK_DIR
