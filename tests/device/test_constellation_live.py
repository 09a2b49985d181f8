"""``POST /v1/infer?constellation=true`` through real edge, channel and device processes:
the sent symbols are the ONNX encoder's own (computed here, offline, from the same image),
the received ones differ from them by the channel's AWGN at its PSNR (VL-VFE: PSNR =
10·log10(1/σ²), σ² per real symbol), and the field is absent unless asked for."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from client.http import png_bytes
from device.encoder import OnnxEncoder
from device.preprocess import image_to_input, open_image
from tests.live import png
from tests.procs import running_stack

PSNR_DB = 5.0
N_IMAGES = 20


@pytest.fixture(scope="module")
def http(quick_model_dir):
    with running_stack(quick_model_dir, psnr_db=PSNR_DB) as live:
        with httpx.Client(base_url=live.url, timeout=20.0) as client:
            yield client


@pytest.fixture(scope="module")
def images():
    from shared.idx import load_test_set

    return load_test_set(None, N_IMAGES)[0]


def test_constellation_is_the_encoders_symbols_and_the_channels_noise(
    http, images, quick_model_dir
):
    encoder = OnnxEncoder(quick_model_dir)
    noise = []
    for image in images:
        response = http.post("/v1/infer", params={"constellation": "true"}, files=png(image))
        assert response.status_code == 200, response.text
        reply = response.json()
        constellation = reply["constellation"]
        sent = np.asarray(constellation["sent"])
        received = np.asarray(constellation["received"])
        assert constellation["note"] is None and constellation["power"] == "peak"
        assert len(sent) == len(received) == reply["symbols_sent"] == encoder.manifest.d

        x = image_to_input(open_image(png_bytes(image)), encoder.manifest)
        encoded = encoder.encode(x[None], reply["beta"], reply["snr_db"])
        offline = encoder.transmit(encoded, 0, reply["variable_length"]).symbols
        np.testing.assert_allclose(sent, offline, atol=1e-6)
        noise.append(received - sent)
    noise = np.concatenate(noise)
    noise_var = 10 ** (-PSNR_DB / 10)  # 0.316; 1,280 samples: the estimate's s.e. is 4%
    assert np.var(noise) == pytest.approx(noise_var, rel=0.15)
    assert abs(np.mean(noise)) < 0.1  # zero-mean noise (s.e. 0.016)


def test_constellation_only_when_asked(http, images):
    plain = http.post("/v1/infer", files=png(images[0]))
    assert plain.status_code == 200 and "constellation" not in plain.json()
    off = http.post("/v1/infer", params={"constellation": "false"}, files=png(images[0]))
    assert off.status_code == 200 and "constellation" not in off.json()
    bad = http.post("/v1/infer", params={"constellation": "yes"}, files=png(images[0]))
    assert bad.status_code == 422
    assert "constellation must be true or false" in bad.json()["detail"]
