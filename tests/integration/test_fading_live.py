"""Block fading through the real stack: device (ONNX Runtime) -> channel (--fading) -> edge.

With a seeded channel and one request at a time, the live answers equal the offline fading
path image by image: the device's ONNX encoder at the average PSNR it is told, then
``shared.fading.fade`` per transmission from a generator with the channel's seed (the draws
the channel makes, in its order), zero forcing, and the edge's decoder at the receiver's
instantaneous SNR clipped to the trained range. Then the admin method SetFading: a bad
setting is INVALID_ARGUMENT and leaves the channel as it was; "none" is AWGN again.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from client.http import png_bytes
from device.encoder import OnnxEncoder
from shared.fading import Fading, fade
from shared.idx import load_test_set
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tests.live import LiveStackSpec, infer_each, model_input, needs_test_set

pytestmark = needs_test_set

PSNR_DB = 12.0
SEED = 13
N_IMAGES = 200
LIVE_STACK = LiveStackSpec(
    "quick_model_dir", PSNR_DB, seed=SEED, channel_flags=("--fading", "rayleigh")
)


def test_live_fading_equals_the_offline_path_image_by_image(live_http, quick_model_dir):
    from edge_server.decoder import DecoderRuntime  # torch: test process only

    images, labels = load_test_set(None, N_IMAGES)
    replies = infer_each(live_http, images)
    encoder = OnnxEncoder(quick_model_dir)
    manifest = encoder.manifest
    beta, snr_db = replies[0]["beta"], replies[0]["snr_db"]
    assert snr_db == PSNR_DB  # feedback mode: the device is told the average PSNR
    encoded = encoder.encode(model_input(manifest, images), beta, snr_db)
    rng = np.random.default_rng(SEED)
    received = np.zeros((N_IMAGES, manifest.d), np.float32)
    decoder_snr = np.zeros(N_IMAGES, np.float32)
    lo, hi = manifest.snr_db_range
    for i, reply in enumerate(replies):
        sent = encoder.transmit(encoded, i, False)
        faded, fading_draw = fade(sent.symbols[None], PSNR_DB, Fading("rayleigh"), rng)
        received[i, : sent.n_symbols] = faded[0]
        instantaneous = float(fading_draw.instantaneous_snr_db()[0])
        decoder_snr[i] = min(max(instantaneous, lo), hi)
        assert reply["channel_psnr_db"] == PSNR_DB
        assert reply["instantaneous_snr_db"] == pytest.approx(instantaneous, abs=1e-9)
        assert reply["channel_gain"] == pytest.approx(float(fading_draw.gain[0, 0]), abs=1e-9)
        assert reply["decoder_snr_db"] == pytest.approx(decoder_snr[i], abs=1e-5)
    decoder = DecoderRuntime(quick_model_dir, device="cpu")
    offline = np.asarray(decoder(received, np.full(N_IMAGES, beta, np.float32), decoder_snr))
    live = np.asarray([r["probabilities"] for r in replies])
    assert np.max(np.abs(live - offline)) <= 1e-3
    live_labels = np.asarray([r["label"] for r in replies])
    assert np.sum(live_labels != np.argmax(offline, axis=1)) <= 1
    gains = np.asarray([r["channel_gain"] for r in replies])
    assert np.mean(gains**2) == pytest.approx(1.0, abs=0.25)  # E|h|² = 1 over 200 draws
    assert np.mean(live_labels == labels) > 0.3  # the fading link still carries the task


def test_set_fading_is_validated_and_switches_back_to_awgn(live_stack, live_http):
    with grpc.insecure_channel(live_stack.channel_target) as ch:
        channel = pb_grpc.ChannelStub(ch)
        state = channel.GetState(pb.GetStateRequest())
        assert state.fading.startswith("rayleigh") and state.fading_settings.kind == "rayleigh"
        for bad in (pb.FadingSettings(kind="nakagami"),
                    pb.FadingSettings(kind="rician", k_factor=-1.0),
                    pb.FadingSettings(kind="rayleigh", k_factor=2.0),
                    pb.FadingSettings(kind="rayleigh", csi="oracle"),
                    pb.FadingSettings(kind="none", coherence=4)):  # fmt: skip
            with pytest.raises(grpc.RpcError) as err:
                channel.SetFading(pb.SetFadingRequest(fading=bad))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
            assert channel.GetState(pb.GetStateRequest()).fading == state.fading  # untouched
        rician = channel.SetFading(pb.SetFadingRequest(
            fading=pb.FadingSettings(kind="rician", k_factor=3.0, coherence=8)))  # fmt: skip
        assert rician.fading_settings.k_factor == 3.0 and "coherence 8" in rician.fading
        r = live_http.post("/v1/infer", content=png_bytes(np.zeros((28, 28), np.uint8)),
                           headers={"content-type": "image/png"})  # fmt: skip
        assert r.status_code == 200 and r.json()["channel_gain"] is not None
        off = channel.SetFading(pb.SetFadingRequest(fading=pb.FadingSettings(kind="none")))
        assert off.fading == "none (AWGN)"
        r = live_http.post("/v1/infer", content=png_bytes(np.zeros((28, 28), np.uint8)),
                           headers={"content-type": "image/png"})  # fmt: skip
        body = r.json()
        assert body["channel_gain"] is None and body["instantaneous_snr_db"] is None
        channel.SetFading(pb.SetFadingRequest(fading=pb.FadingSettings(kind="rayleigh")))


def test_the_device_route_sets_the_channels_fading(live_http):
    r = live_http.put("/v1/channel/fading", json={"kind": "rician", "k_factor": 2.0})
    assert r.status_code == 200, r.text
    assert r.json()["fading"].startswith("rician K=2")
    assert live_http.get("/v1/channel").json()["fading"].startswith("rician K=2")
    # the channel's own check (a K-factor with rayleigh) and the route's schema: 422 both
    r = live_http.put("/v1/channel/fading", json={"kind": "rayleigh", "k_factor": 2.0})
    assert r.status_code == 422 and "rician" in r.json()["detail"]
    for bad in ({"kind": "nakagami"}, {"kind": "rician", "k_factor": -1},
                {"kind": "rayleigh", "coherence": 0}, {"kind": "rayleigh", "csi": "oracle"},
                {"kind": "rayleigh", "pilots": "2"}, {"k_factor": 1.0}):  # fmt: skip
        r = live_http.put("/v1/channel/fading", json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert live_http.get("/v1/channel").json()["fading"].startswith("rician K=2")  # untouched
    r = live_http.put("/v1/channel/fading", json={"kind": "rayleigh"})
    assert r.status_code == 200 and r.json()["fading"].startswith("rayleigh")
