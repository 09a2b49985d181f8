"""The digital links through the live system: real edge, channel and device
processes on loopback serving the entropy-coded quick model (artifacts/test-quick-digital)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from shared.entropy import payload_crc32
from shared.link.modes import ideal_airtime_s
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tests.live import LiveStackSpec, infer_each, needs_test_set

pytestmark = needs_test_set

N_IMAGES = 12
LIVE_STACK = LiveStackSpec(
    "quick_digital_model_dir", 20.0, channel_flags=("--link-mode", "ideal"),
    device_flags=("--deadline-s", 10), http_timeout_s=20.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def channel(live_stack):
    with grpc.insecure_channel(live_stack.channel_target) as ch:
        yield pb_grpc.ChannelStub(ch)


@pytest.fixture(scope="module")
def images():
    from shared.idx import load_test_set

    return load_test_set(None, N_IMAGES)[0]


def send(http, images, beta=None):
    if beta is not None:
        assert http.put("/v1/knobs", json={"beta": beta}).status_code == 200
    return infer_each(http, images)


def test_ideal_link_bits_are_the_coded_length_and_fall_with_beta(live_http, channel, images):
    channel.SetPsnr(pb.SetPsnrRequest(psnr_db=20.0))
    assert channel.SetLinkMode(pb.LinkModeRequest(mode="ideal")).link_mode == "ideal"
    low = send(live_http, images, beta=1e-4)
    high = send(live_http, images, beta=1.0)
    for reply in low + high:
        assert reply["link_mode"] == "ideal" and not reply["link_lost"]
        assert reply["bits_sent"] % 8 == 0  # whole bytes, trimmed (shared/entropy.py)
        assert reply["bits_sent"] <= 1.03 * reply["predicted_bits"] + 32
        # VL-VFE eq. (13): bits / (0.5 log2(1 + PSNR) × 9600 baud)
        assert reply["airtime_s"] == pytest.approx(ideal_airtime_s(reply["bits_sent"], 20.0))
        # measured spans (their speed is the digital experiment's, not a unit test's)
        assert reply["entropy_encode_us"] > 0 and reply["entropy_decode_us"] > 0
    bits_low = np.mean([r["bits_sent"] for r in low])
    bits_high = np.mean([r["bits_sent"] for r in high])
    print(f"live ideal link: {bits_low:.0f} bits at beta 1e-4, {bits_high:.0f} at beta 1")
    assert bits_high < 0.6 * bits_low and bits_low < 256


def test_ldpc_qam_delivers_at_high_psnr_and_loses_blocks_far_below(live_http, channel, images):
    send(live_http, images[:1], beta=1e-2)
    channel.SetPsnr(pb.SetPsnrRequest(psnr_db=20.0))
    ideal = send(live_http, images)
    state = channel.SetLinkMode(pb.LinkModeRequest(mode="ldpc-qam"))
    assert state.link_mode == "ldpc-qam" and state.mcs == "64-QAM 2/3"
    good = send(live_http, images)
    for a, b in zip(ideal, good, strict=True):
        assert b["link_mode"] == "ldpc-qam" and b["mcs"] == "64-QAM 2/3" and not b["link_lost"]
        assert b["label"] == a["label"] and b["bits_sent"] == a["bits_sent"]
        assert b["symbols_sent"] > 0 and b["airtime_s"] == pytest.approx(b["symbols_sent"] / 9600)
    channel.SetPsnr(pb.SetPsnrRequest(psnr_db=-9.0))  # QPSK 1/3 needs about 0 dB
    lost = send(live_http, images[:4])
    assert all(r["link_lost"] for r in lost)
    assert lost[-1]["block_error_rate"] > 0
    # decoded from zeros: the answer no longer depends on the image
    assert len({tuple(np.round(r["probabilities"], 6)) for r in lost}) == 1
    state = channel.GetState(pb.GetStateRequest())
    assert state.blocks_failed >= 4 and state.blocks_sent == len(images) + 4
    channel.SetPsnr(pb.SetPsnrRequest(psnr_db=20.0))


def test_analog_link_still_sends_the_symbols(live_http, channel, images):
    channel.SetLinkMode(pb.LinkModeRequest(mode="analog"))
    reply = send(live_http, images[:1])[0]
    assert reply["link_mode"] == "analog" and reply["symbols_sent"] == 64
    assert reply["bits_sent"] == 256


def test_bad_link_mode_and_corrupt_bytes_are_rejected(live_stack, channel, images):
    with pytest.raises(grpc.RpcError) as info:
        channel.SetLinkMode(pb.LinkModeRequest(mode="carrier-pigeon"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "analog" in info.value.details()
    info_reply = channel.GetEdgeInfo(pb.GetInfoRequest())
    assert info_reply.entropy_coded
    with grpc.insecure_channel(live_stack.edge_target) as ch:
        edge = pb_grpc.EdgeStub(ch)
        bad = pb.Transmission(
            model_id=info_reply.model_id, beta=1e-2, snr_db=10.0, d=64, link_mode="ideal",
            n_coded=64, coded_indices=b"\x01" * 4096,
        )  # fmt: skip
        with pytest.raises(grpc.RpcError) as info:
            edge.Decode(bad, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "longer than the longest valid code" in info.value.details()
        garbage = pb.Transmission()
        garbage.CopyFrom(bad)
        garbage.coded_indices = bytes(range(16))  # decodes to some indices: still an answer
        assert len(edge.Decode(garbage, timeout=10).probabilities) == 10
        # with the device's CRC-32, one flipped bit is DATA_LOSS, not a wrong answer
        garbage.coded_crc32 = payload_crc32(bytes(range(16)))
        assert len(edge.Decode(garbage, timeout=10).probabilities) == 10
        garbage.coded_indices = bytes([1, *range(1, 16)])
        with pytest.raises(grpc.RpcError) as info:
            edge.Decode(garbage, timeout=10)
        assert info.value.code() == grpc.StatusCode.DATA_LOSS
        assert "CRC-32" in info.value.details()


def test_the_device_switches_the_channels_link(live_http, images):
    model = live_http.get("/v1/model").json()
    assert model["entropy_coded"] is True and model["power"] == "peak"
    try:
        state = live_http.put("/v1/channel/link-mode", json={"mode": "analog"})
        assert state.status_code == 200 and state.json()["link_mode"] == "analog"
        assert send(live_http, images[:2])[0]["link_mode"] == "analog"
        state = live_http.put("/v1/channel/link-mode", json={"mode": "ideal"}).json()
        assert state["link_mode"] == "ideal"
        assert send(live_http, images[:2])[0]["link_mode"] == "ideal"
        bad = live_http.put("/v1/channel/link-mode", json={"mode": "carrier-pigeon"})
        assert bad.status_code == 422 and "mode" in bad.json()["detail"]
    finally:
        live_http.put("/v1/channel/link-mode", json={"mode": "ideal"})
