"""Make targets a new user runs first: a missing tool is named, with the way around it."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_compose_demo_without_a_compose_runner_says_what_is_missing():
    done = subprocess.run(
        ["make", "-s", "compose-demo", "COMPOSE=no-such-compose-runner"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "'no-such-compose-runner' was not found" in done.stderr
    assert "COMPOSE=" in done.stderr and "docker compose" in done.stderr
    assert "trainer train" not in done.stdout  # refused before training anything


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("task", "model", "train"),
    [
        ("reconstruction", "image", "train-image --quick"),
        ("classification", "quick", "train --quick"),
    ],
)
def test_compose_demo_serves_the_model_of_the_task(task, model, train):
    done = subprocess.run(
        ["make", "-n", "compose-demo", f"TASK={task}", "COMPOSE=true"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"-m trainer {train} --out artifacts/{model}" in done.stdout
    assert f"MODEL={model} true up" in done.stdout
