"""The client's command line: ``python -m client`` and its alias ``python -m device.client``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.procs import REPO


@pytest.mark.parametrize("module", ["client", "device.client"])
def test_both_names_run_the_client(module):
    result = subprocess.run(
        [sys.executable, "-m", module, "--test-samples", "1", "--url", "http://127.0.0.1:9"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # no device listens on port 9 (discard): the client says so and exits 2
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot reach the device at http://127.0.0.1:9" in result.stderr
