"""The image model through the real stack: device (ONNX Runtime) -> channel -> edge.

Image by image, the live reconstructions equal the offline path's (the device's ONNX
encoder, the channel's seeded noise replayed in order, the edge's decoder runtime), so the
PSNR the device reports is the offline PSNR to 0.01 dB. Then the contract's edges: images of
any size and mode, a transmission with the wrong power convention, one over its power budget.
"""

from __future__ import annotations

import base64
import io

import grpc
import numpy as np
import pytest
from PIL import Image

from client.http import png_bytes
from device.encoder import OnnxEncoder
from device.reconstruction import png_base64
from shared.channel import awgn
from shared.idx import DEFAULT_DATA_DIR, load_test_set
from shared.image_metrics import psnr_db
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tests.live import LiveStackSpec, infer_each, needs_test_set

pytestmark = needs_test_set

SNR_DB = 10.0
SEED = 11
N_IMAGES = 40
LIVE_STACK = LiveStackSpec("quick_image_model_dir", SNR_DB, seed=SEED)


def test_live_reconstructions_equal_the_offline_path(live_http, quick_image_model_dir):
    from edge_server.decoder import DecoderRuntime  # torch: test process only

    images, _ = load_test_set(DEFAULT_DATA_DIR, N_IMAGES)
    replies = infer_each(live_http, images)
    encoder = OnnxEncoder(quick_image_model_dir)
    x = images[:, None].astype(np.float32) / 255.0
    snr = replies[0]["snr_db"]
    encoded = encoder.encode(x, 1.0, snr)
    rng = np.random.default_rng(SEED)
    received = np.stack([awgn(encoded.symbols[i], SNR_DB, rng) for i in range(N_IMAGES)])
    decoder = DecoderRuntime(quick_image_model_dir, device="cpu")
    offline = decoder(received, np.ones(N_IMAGES), np.full(N_IMAGES, snr)).reshape(x.shape)
    offline_psnr = psnr_db(x, offline)
    for i, reply in enumerate(replies):
        rec = reply["reconstruction"]
        assert rec["shape"] == [1, 28, 28] and rec["format"] == "png"
        assert reply["symbols_sent"] == 128 and reply["channel_psnr_db"] == SNR_DB
        assert rec["psnr_db"] == pytest.approx(offline_psnr[i], abs=0.01)
        assert rec["received_png_base64"] == png_base64(offline[i])
        sent = Image.open(io.BytesIO(base64.b64decode(rec["sent_png_base64"])))
        assert np.array_equal(np.asarray(sent), images[i])
    mean_psnr = float(np.mean([r["reconstruction"]["psnr_db"] for r in replies]))
    assert mean_psnr > 11.0  # above the mean image's ~10.7 dB on Fashion-MNIST


def test_images_of_any_size_and_mode_are_converted(live_http):
    data = png_bytes(np.zeros((28, 28), np.uint8))
    r = live_http.post("/v1/infer?task=classification", content=data,
                       headers={"content-type": "image/png"})  # fmt: skip
    assert r.status_code == 422 and "reconstruction" in r.json()["detail"]
    r = live_http.post("/v1/infer?task=reconstruction", content=data,
                       headers={"content-type": "image/png"})  # fmt: skip
    assert r.status_code == 200 and "reconstruction" in r.json()
    rng = np.random.default_rng(0)
    for mode, size in (("RGB", (90, 40)), ("RGBA", (28, 28)), ("L", (300, 200))):
        pixels = rng.integers(0, 255, (size[1], size[0], len(mode)), dtype=np.uint8)
        img = Image.fromarray(pixels.squeeze(), mode=mode if mode != "L" else None)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        r = live_http.post(
            "/v1/infer", content=buf.getvalue(), headers={"content-type": "image/png"}
        )
        assert r.status_code == 200, r.text
        rec = r.json()["reconstruction"]
        assert rec["shape"] == [1, 28, 28] and 0.0 <= rec["ssim"] <= 1.0


def _transmission(model_id: str, symbols, power: str) -> pb.Transmission:
    return pb.Transmission(request_id="t", model_id=model_id, beta=1.0, snr_db=SNR_DB,
                           d=128, symbols=symbols, power=power)  # fmt: skip


def test_wrong_power_convention_and_power_budget_are_refused(live_stack, live_http):
    model_id = live_http.get("/v1/model").json()["model_id"]
    with (
        grpc.insecure_channel(live_stack.edge_target) as edge_ch,
        grpc.insecure_channel(live_stack.channel_target) as channel_ch,
    ):
        edge, channel = pb_grpc.EdgeStub(edge_ch), pb_grpc.ChannelStub(channel_ch)
        info = edge.GetInfo(pb.GetInfoRequest())
        assert info.task == "reconstruction" and info.power == "average"
        unit = [1.0, -1.0] * 64
        # a classification-style transmission (no power field = peak) to the image edge
        with pytest.raises(grpc.RpcError) as err:
            edge.Decode(_transmission(model_id, unit, ""))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "reconstruction" in err.value.details() and "average" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            channel.Transmit(_transmission(model_id, [2.0] * 128, "average"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "mean power 4" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            channel.Transmit(_transmission(model_id, unit, "watts"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reply = channel.Transmit(_transmission(model_id, unit, "average"))
        assert list(reply.reconstruction_shape) == [1, 28, 28]
        assert len(reply.reconstruction) == 784


def test_client_snr_sweep_reports_psnr_and_ssim(live_stack):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "client", "--url", live_stack.url, "--test-samples", "20",
           "--snr-sweep", "0,20"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    assert "img PSNR" in out and "SSIM" in out
    rows = {
        float(line.split()[0]): float(line.split()[3])
        for line in out.splitlines()
        if line.strip()[:1].isdigit() and len(line.split()) >= 9
    }
    assert set(rows) == {0.0, 20.0} and rows[20.0] > rows[0.0]


def test_an_image_transmission_is_refused_on_a_digital_link(live_stack, live_http):
    model_id = live_http.get("/v1/model").json()["model_id"]
    with grpc.insecure_channel(live_stack.channel_target) as channel_ch:
        channel = pb_grpc.ChannelStub(channel_ch)
        assert channel.SetLinkMode(pb.LinkModeRequest(mode="ideal")).link_mode == "ideal"
        try:
            with pytest.raises(grpc.RpcError) as err:
                channel.Transmit(_transmission(model_id, [1.0, -1.0] * 64, "average"))
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "analog" in err.value.details()
            r = live_http.post("/v1/infer", content=png_bytes(np.zeros((28, 28), np.uint8)),
                               headers={"content-type": "image/png"})  # fmt: skip
            assert r.status_code == 502 and "analog" in r.json()["detail"]
        finally:
            channel.SetLinkMode(pb.LinkModeRequest(mode="analog"))
