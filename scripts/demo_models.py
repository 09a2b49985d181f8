"""The models `make demo` trains once into ``artifacts/demo/`` and reuses.

Two chains run side by side, each on one torch thread (the 2-core budget of the demo):
``base`` (4-bit quick model) then ``digital`` (its entropy-coded fine-tune at lr 5e-4, the
setting whose bits respond most to β within 2 epochs); ``vl`` (variable-length quick model)
then ``image`` (the Hyper-AJSCC deep-JSCC image model). A model is retrained
only when its folder has no manifest or was trained with other arguments (``.demo-args``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["-m", "trainer", "train"]

# name -> (command after the interpreter, the model it builds on or None)
DEMO_MODELS: dict[str, tuple[list[str], str | None]] = {
    "base": ([*TRAIN, "--quick", "--bits", "4", "--seed", "0", "--no-progress"], None),
    "digital": (
        [
            "-m",
            "trainer",
            "digital",
            "--base",
            "{base}",
            "--epochs",
            "2",
            "--lr",
            "5e-4",
            "--train-subset",
            "20000",
            "--no-progress",
        ],
        "base",
    ),  # fmt: skip
    "vl": (
        [
            *TRAIN,
            "--quick",
            "--variable-length",
            "--prior",
            "log-uniform",
            "--fixed-beta",
            "3e-2",
            "--snr-min",
            "10",
            "--snr-max",
            "25",
            "--kl-warmup-epochs",
            "1",
            "--seed",
            "0",
            "--no-progress",
        ],
        None,
    ),  # fmt: skip
    # Hyper-AJSCC image model (8 filters, R = 1/12, 0-20 dB): python -m trainer train-image
    "image": (
        [
            "-m",
            "trainer",
            "train-image",
            "--quick",
            "--threads",
            "1",
            "--seed",
            "0",
            "--no-progress",
            "--n-eval",
            "200",
        ],
        None,
    ),  # fmt: skip
}
CHAINS = (("base", "digital"), ("vl", "image"))


def _command(name: str, models: Path, data_dir: str | None) -> list[str]:
    args, base = DEMO_MODELS[name]
    args = [a.format(base=models / base) if base else a for a in args]
    if data_dir:
        args += ["--data-dir", data_dir]
    return [sys.executable, *args, "--out", str(models / name)]


def _is_current(folder: Path, command: list[str]) -> bool:
    stamp = folder / ".demo-args"
    return (
        (folder / "manifest.json").is_file()
        and stamp.is_file()
        and (stamp.read_text() == " ".join(command[1:]))
    )


def _train(name: str, models: Path, data_dir: str | None, errors: list[str]) -> None:
    command = _command(name, models, data_dir)
    folder = models / name
    if _is_current(folder, command):
        print(f"  {name}: using {folder}", flush=True)
        return
    start = time.perf_counter()
    print(f"  {name}: training ({' '.join(command[1:3])} ...)", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        errors.append(f"{name}: {' '.join(command[1:])}\n{result.stdout[-2000:]}"
                      f"{result.stderr[-2000:]}")  # fmt: skip
        return
    (folder / ".demo-args").write_text(" ".join(command[1:]))
    print(f"  {name}: trained in {time.perf_counter() - start:.0f} s", flush=True)


def ensure_models(models: Path, data_dir: str | None = None) -> dict[str, Path]:
    """Train the missing demo models (two chains in parallel); return name -> folder."""
    names = list(DEMO_MODELS)
    print(f"demo models in {models}:", flush=True)
    models.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []

    def chain(members: tuple[str, ...]) -> None:
        for name in members:
            if name in names and not errors:
                _train(name, models, data_dir, errors)

    threads = [threading.Thread(target=chain, args=(c,)) for c in CHAINS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError("demo training failed:\n" + "\n".join(errors))
    return {name: models / name for name in names}
