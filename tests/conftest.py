"""Shared fixtures: the real quick models (tests/quick_models.py: trained once per source
version and reused), the live stack of a test module (tests/live.py), torch threads per
pytest-xdist worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import quick_models
from tools.stack import Stack


def threads_per_worker() -> int:
    """Torch (OpenMP) threads for each pytest-xdist worker and the trainings it starts: the
    cores shared out among the workers (1 for ``make test``'s two workers on two cores). More
    threads than that spin at OpenMP's barriers while the other worker's tests want the same
    cores (a quick training beside the other worker's tests took 2-3 times as long)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def pytest_configure(config) -> None:
    # in each xdist worker (not the controller, whose environment the workers inherit), before
    # a test imports torch; the processes its tests start inherit it; a user's own value wins
    if "PYTEST_XDIST_WORKER" in os.environ:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_worker()))


@pytest.fixture(scope="session")
def quick_model_dir() -> Path:
    """artifacts/test-quick: a real 4-bit quick Fashion-MNIST model (trained in ~30 s)."""
    return quick_models.quick()


@pytest.fixture(scope="session")
def quick_vl_model_dir() -> Path:
    """artifacts/test-quick-vl: a real variable-length (VL-VFE) quick model (~30 s)."""
    return quick_models.quick_vl()


@pytest.fixture(scope="session")
def quick_multi_model_dir() -> Path:
    """artifacts/test-quick-multi: a real K = 2 multi-link quick model (encoder-link<k>.onnx)."""
    return quick_models.quick_multi()


@pytest.fixture(scope="session")
def quick_image_model_dir() -> Path:
    """artifacts/test-quick-image: a real image JSCC quick model (task reconstruction)."""
    return quick_models.quick_image()


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
