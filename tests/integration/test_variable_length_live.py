"""VL-VFE through the live system: the device's variable-length knob sends fewer symbols on a
good channel. Real edge, channel and device processes on loopback, serving a quick
variable-length model (artifacts/test-quick-vl)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.integration.test_end_to_end import (  # noqa: F401 (pytestmark: same skip)
    e2e_stack,
    png,
    pytestmark,
)

N_IMAGES = 30


@pytest.fixture(scope="module")
def vl_stack(quick_vl_model_dir):
    with e2e_stack(quick_vl_model_dir) as stack:
        yield stack


@pytest.fixture(scope="module")
def http(vl_stack):
    with httpx.Client(base_url=vl_stack.url, timeout=10.0) as client:
        yield client


def mean_symbols_at(
    http: httpx.Client, psnr_db: float, images: np.ndarray, variable_length: bool = True
) -> float:
    """Set the channel's PSNR (feedback mode: the encoder follows it) and send the images."""
    assert http.put("/v1/channel/psnr", json={"psnr_db": psnr_db}).status_code == 200
    sent = []
    for image in images:
        response = http.post("/v1/infer", files=png(image))
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["snr_db"] == psnr_db and reply["variable_length"] is variable_length
        sent.append(reply["symbols_sent"])
    return float(np.mean(sent))


def test_fewer_symbols_at_25_db_than_at_10_db(http):
    from shared.idx import load_test_set

    images, _ = load_test_set(None, N_IMAGES)
    knobs = http.get("/v1/knobs").json()
    assert knobs["snr_mode"] == "feedback" and knobs["variable_length"] is True
    at_10 = mean_symbols_at(http, 10.0, images)
    at_25 = mean_symbols_at(http, 25.0, images)
    print(f"live variable length: {at_10:.1f} symbols at 10 dB, {at_25:.1f} at 25 dB")
    assert at_25 < at_10
    # the knob off sends every dimension whatever the channel
    assert http.put("/v1/knobs", json={"variable_length": False}).status_code == 200
    try:
        d = http.get("/v1/model").json()["d"]
        assert mean_symbols_at(http, 25.0, images[:3], variable_length=False) == d
    finally:
        http.put("/v1/knobs", json={"variable_length": True})
