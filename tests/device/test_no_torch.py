"""The device never imports PyTorch (DESIGN §3): checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.procs import REPO

DEVICE_MODULES = (
    "device",
    "device.__main__",
    "device.app",
    "device.channel_client",
    "client",
    "client.beta_sweep",
    "client.cli",
    "client.groups",
    "client.http",
    "device.encoder",
    "device.knobs",
    "device.metrics",
    "device.preprocess",
    "device.service",
    "device.settings",
)


def run_isolated(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_importing_the_device_does_not_import_torch():
    result = run_isolated(
        f"""
        import importlib, sys
        for name in {DEVICE_MODULES!r}:
            importlib.import_module(name)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "trainer"))
        assert not heavy, heavy
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_building_the_app_with_a_real_model_does_not_import_torch(quick_model_dir):
    result = run_isolated(
        f"""
        import sys
        from device.app import create_app
        from device.settings import parse_settings
        app = create_app(parse_settings(["--model", {str(quick_model_dir)!r}]))
        assert app.state.service.encoder.session is not None
        assert "torch" not in sys.modules, "torch imported"
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
