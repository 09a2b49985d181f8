"""The web page's routes without a browser: GET /, static files, /v1/samples/random."""

from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from device.app import create_app
from device.settings import DeviceSettings
from shared.idx import DEFAULT_DATA_DIR


def _client(model_dir, data_dir) -> TestClient:
    # the channel is never called by these routes (the gRPC client connects lazily)
    settings = DeviceSettings(model=model_dir, channel="127.0.0.1:9", data_dir=data_dir)
    return TestClient(create_app(settings))


def test_page_and_static_files(quick_model_dir, tmp_path):
    with _client(quick_model_dir, tmp_path) as client:
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/static/app.js" in page.text and "cdn" not in page.text.lower()
        for name in ("app.js", "charts.js", "style.css"):
            assert client.get(f"/static/{name}").status_code == 200


def test_random_sample_404_without_data(quick_model_dir, tmp_path):
    with _client(quick_model_dir, tmp_path) as client:
        reply = client.get("/v1/samples/random")
    assert reply.status_code == 404
    assert str(tmp_path) in reply.json()["detail"]
    assert "t10k-images" in reply.json()["detail"]


@pytest.mark.skipif(
    not any(DEFAULT_DATA_DIR.glob("t10k-images*")), reason="Fashion-MNIST not installed"
)
def test_random_sample(quick_model_dir):
    with _client(quick_model_dir, None) as client:
        reply = client.get("/v1/samples/random").json()
        image = Image.open(io.BytesIO(base64.b64decode(reply["png_base64"])))
        assert image.size == (28, 28)
        assert 0 <= reply["label"] < 10 and reply["class_name"]
        raw = client.get("/v1/samples/random", params={"index": 0, "format": "png"})
        assert raw.headers["content-type"] == "image/png"
        assert raw.headers["x-label"] == "9"  # the first Fashion-MNIST test image: ankle boot
        assert client.get("/v1/samples/random", params={"index": 10**6}).status_code == 422
