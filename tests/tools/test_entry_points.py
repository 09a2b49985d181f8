"""The commands of ``[project.scripts]`` in pyproject.toml point at real entry functions."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_every_user_command_has_an_entry_point():
    commands = ("edge", "channel", "device", "client", "trainer", "bench")
    assert {f"coinference-{c}" for c in commands} <= set(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_entry_point_answers_help(name):
    """Each target imports and its argument parser answers --help with exit 0."""
    module, _, attr = SCRIPTS[name].partition(":")
    code = f"import sys; from {module} import {attr} as main; sys.exit(main(['--help']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower(), result.stdout[:500]


def test_entry_point_module_resolves_to_a_function():
    for name, target in SCRIPTS.items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), name
