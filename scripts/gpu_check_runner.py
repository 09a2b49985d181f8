"""How ``scripts/gpu_check.py`` runs its steps: each command in a time box cut to the overall
deadline, logged to ``<log dir>/<step>.log``, recorded in ``results.json`` (and the README
regenerated) after every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scripts.gpu_check_readme import HEADLINE, readme

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.py"  # its workers: ``gpu_check.py _decode ...``


class Runner:
    def __init__(self, out: Path, log_dir: Path, budget_s: float):
        self.out, self.log_dir = out, log_dir
        self.deadline = time.monotonic() + budget_s
        self.results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "steps": {}}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2) + "\n")
        (self.out / "README.md").write_text(readme(self.results))

    def call(self, name: str, cmd: list[str], box_s: float, env: dict | None = None) -> dict:
        """Run ``cmd`` in a time box (cut to the overall deadline), logged to <name>.log."""
        box = min(box_s, self.left())
        shown = " ".join(cmd).replace(f"{REPO}/", "").replace(sys.executable, "python")
        record = {"cmd": shown, "box_s": round(box, 1)}
        if box < 5:
            record.update(rc=None, status="skipped: no time left")
            print(f"[{name}] skipped (no time left)", flush=True)
            return record
        print(f"[{name}] {' '.join(cmd)} (box {box:.0f} s)", flush=True)
        log = self.log_dir / f"{name}.log"
        start = time.monotonic()
        with log.open("w") as fh:
            try:
                proc = subprocess.run(
                    cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, timeout=box,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                )  # fmt: skip
                record.update(rc=proc.returncode, status="ok" if proc.returncode == 0 else "failed")
            except subprocess.TimeoutExpired:
                record.update(rc=None, status="timeout")
            except OSError as exc:  # e.g. no nvidia-smi
                fh.write(repr(exc))
                record.update(rc=None, status=f"failed: {exc!r}")
        record["wall_s"] = round(time.monotonic() - start, 2)
        text = log.read_text(errors="replace")
        record["tail"] = text[-1500:] if record["status"] != "ok" else text[-300:]
        print(f"[{name}] {record['status']} in {record['wall_s']} s", flush=True)
        return record

    def json_call(self, name: str, args: list[str], box_s: float, env=None) -> dict:
        """A worker of this script; its last stdout line is JSON."""
        record = self.call(name, [sys.executable, str(SCRIPT), *args], box_s, env)
        if record["status"] == "ok":
            lines = (self.log_dir / f"{name}.log").read_text().strip().splitlines()
            record["result"] = json.loads(lines[-1])
        return record


def train_record(record: dict, out_dir: Path) -> dict:
    log_path, manifest_path = out_dir / "train_log.json", out_dir / "manifest.json"
    if log_path.is_file():
        log = json.loads(log_path.read_text())
        epochs = log["epochs"]
        record.update(
            epochs=len(epochs), train_wall_s=log["train_wall_s"],
            epoch_wall_s=log["train_wall_s"] / max(1, len(epochs)),
            train_cpu_s=log.get("train_cpu_s"), machine=log.get("machine"),
            final_train_accuracy=epochs[-1].get("train_accuracy") if epochs else None,
            world_size=log.get("world_size"), distributed=log.get("distributed"),
        )  # fmt: skip
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        record["model_id"] = manifest["model_id"]
        record["test_accuracy"] = manifest["metrics"].get(HEADLINE, {}).get("value")
    return record
