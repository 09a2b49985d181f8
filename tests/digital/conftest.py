"""A real entropy-coded quick model: artifacts/test-quick fine-tuned with its code length
(python -m trainer digital, ~15 s), rebuilt when the sources or the base model change."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUICK_ARGS, QUICK_DIR, ROOT, artifact_lock, trained_model

DIGITAL_DIR = ROOT / "artifacts" / "test-quick-digital"
DIGITAL_ARGS = ["--epochs", "2", "--train-subset", "10000", "--no-progress"]


def _stamp(base: Path) -> str:
    digest = hashlib.sha256(" ".join(DIGITAL_ARGS).encode())
    digest.update(json.loads((base / "manifest.json").read_text())["model_id"].encode())
    sources = [ROOT / "trainer" / n for n in ("entropy_finetune.py", "train.py", "export.py")]
    sources += [ROOT / "shared" / "entropy.py", *sorted((ROOT / "shared" / "nn").rglob("*.py"))]
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def quick_digital_model_dir() -> Path:
    base = trained_model(QUICK_DIR, QUICK_ARGS)
    with artifact_lock(DIGITAL_DIR):
        return _fine_tune_unless_stamped(base)


def _fine_tune_unless_stamped(base: Path) -> Path:
    stamp = _stamp(base)
    stamp_file = DIGITAL_DIR / ".source-stamp"
    if not stamp_file.is_file() or stamp_file.read_text() != stamp:
        cmd = [sys.executable, "-m", "trainer", "digital", "--base", str(base),
               "--out", str(DIGITAL_DIR), *DIGITAL_ARGS]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"digital fine-tune failed:\n{result.stdout}\n{result.stderr}")
        stamp_file.write_text(stamp)
    return DIGITAL_DIR
