"""VL-VFE through the live system: the device's variable-length knob sends fewer symbols on a
good channel. Real edge, channel and device processes on loopback, serving a quick
variable-length model (artifacts/test-quick-vl)."""

from __future__ import annotations

import httpx
import numpy as np

from tests.live import LiveStackSpec, infer_each, needs_test_set

pytestmark = needs_test_set

N_IMAGES = 30
LIVE_STACK = LiveStackSpec("quick_vl_model_dir", 20.0, device_flags=("--deadline-s", 1.5))


def mean_symbols_at(
    http: httpx.Client, psnr_db: float, images: np.ndarray, variable_length: bool = True
) -> float:
    """Set the channel's PSNR (feedback mode: the encoder follows it) and send the images."""
    assert http.put("/v1/channel/psnr", json={"psnr_db": psnr_db}).status_code == 200
    replies = infer_each(http, images)
    for reply in replies:
        assert reply["snr_db"] == psnr_db and reply["variable_length"] is variable_length
    return float(np.mean([reply["symbols_sent"] for reply in replies]))


def test_fewer_symbols_at_25_db_than_at_10_db(live_http):
    from shared.idx import load_test_set

    images, _ = load_test_set(None, N_IMAGES)
    knobs = live_http.get("/v1/knobs").json()
    assert knobs["snr_mode"] == "feedback" and knobs["variable_length"] is True
    at_10 = mean_symbols_at(live_http, 10.0, images)
    at_25 = mean_symbols_at(live_http, 25.0, images)
    print(f"live variable length: {at_10:.1f} symbols at 10 dB, {at_25:.1f} at 25 dB")
    assert at_25 < at_10
    # the knob off sends every dimension whatever the channel
    assert live_http.put("/v1/knobs", json={"variable_length": False}).status_code == 200
    try:
        d = live_http.get("/v1/model").json()["d"]
        assert mean_symbols_at(live_http, 25.0, images[:3], variable_length=False) == d
    finally:
        live_http.put("/v1/knobs", json={"variable_length": True})
