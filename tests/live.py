"""The live stack of the end-to-end tests: edge, channel and device as real processes on
loopback ports (tools/stack.py) serving a quick model, and the requests the tests send it.

A test module names its stack in ``LIVE_STACK``; the module-scoped fixtures ``live_stack``
and ``live_http`` (tests/conftest.py) start it once for the module and stop it after:

    pytestmark = needs_test_set
    LIVE_STACK = LiveStackSpec("quick_vl_model_dir", psnr_db=20.0, seed=7)

    def test_something(live_http, live_stack):
        replies = infer_each(live_http, images)

A test that needs a fresh stack of its own runs ``spec.running(model_dir)`` itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from client.http import png_bytes
from shared.idx import DEFAULT_DATA_DIR
from tools.stack import Stack, running_stack

needs_test_set = pytest.mark.skipif(
    not any(DEFAULT_DATA_DIR.glob("t10k-images-idx3-ubyte*")),
    reason=f"Fashion-MNIST IDX files not in {DEFAULT_DATA_DIR} (make data)",
)


@dataclass(frozen=True)
class LiveStackSpec:
    """How a live stack runs: the quick model (the name of its session fixture), the channel's
    PSNR and noise seed, further channel and device flags, and the HTTP client's timeout.
    The edge always decodes on the CPU and is given 90 s to start (it loads torch)."""

    model: str
    psnr_db: float
    seed: int = 0
    channel_flags: tuple[object, ...] = ()
    device_flags: tuple[object, ...] = ()
    http_timeout_s: float = 10.0

    @contextmanager
    def running(self, model_dir: Path) -> Iterator[Stack]:
        """The three processes serving ``model_dir``, stopped on the way out."""
        with running_stack(
            model_dir,
            self.psnr_db,
            edge_flags=["--device", "cpu"],
            channel_flags=["--seed", self.seed, *self.channel_flags],
            device_flags=list(self.device_flags),
            start_timeout_s={"edge": 90},
        ) as stack:
            yield stack

    def client(self, stack: Stack) -> httpx.Client:
        """An HTTP client of the stack's device."""
        return httpx.Client(base_url=stack.url, timeout=self.http_timeout_s)


def png(image: np.ndarray) -> dict:
    """``image`` as the multipart upload of /v1/infer."""
    return {"file": ("image.png", png_bytes(image), "image/png")}


def infer_ok(http: httpx.Client, image: np.ndarray) -> dict:
    """The device's reply to ``image``, which must be a 200."""
    response = http.post("/v1/infer", files=png(image))
    assert response.status_code == 200, response.text
    return response.json()


def infer_each(http: httpx.Client, images: np.ndarray) -> list[dict]:
    """The replies to ``images`` sent one at a time, in order (a seeded channel then draws its
    noise in the same order as an offline replay)."""
    return [infer_ok(http, image) for image in images]


def model_input(manifest, images: np.ndarray) -> np.ndarray:
    """uint8 images [N, H, W] as the encoder's normalised float32 input [N, 1, H, W]."""
    mean = np.asarray(manifest.input_mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(manifest.input_std, np.float32).reshape(-1, 1, 1)
    return ((images[:, None].astype(np.float32) / 255.0 - mean) / std).astype(np.float32)
