"""The committed gRPC stubs match the proto, and messages round-trip."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]


def _load_generator():
    spec = importlib.util.spec_from_file_location("protos_generate", REPO / "protos/generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_match_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    written = _load_generator().generate(tmp_path)
    assert written, "generator wrote nothing"
    for fresh in written:
        committed = REPO / "shared" / "rpc" / fresh.name
        assert committed.is_file(), f"{committed} missing: run python protos/generate.py"
        assert fresh.read_text() == committed.read_text(), (
            f"{committed} is stale: run python protos/generate.py"
        )


def test_grpc_module_uses_relative_import() -> None:
    text = (REPO / "shared/rpc/coinference_pb2_grpc.py").read_text()
    assert "from . import coinference_pb2" in text


def test_transmission_round_trip() -> None:
    sent = pb.Transmission(
        request_id="r1",
        model_id="abc",
        beta=1e-3,
        snr_db=12.5,
        bits_per_symbol=2,
        d=16,
        symbols=[0.5, -1.0, 0.25],
        pilots_received=[1.01, -0.98],
        timings=pb.Timings(preprocess_s=0.001, encode_s=0.002),
    )
    assert not sent.HasField("psnr_db")
    sent.psnr_db = 20.0
    sent.noise_var = 0.01
    got = pb.Transmission.FromString(sent.SerializeToString())
    assert got == sent
    assert got.HasField("psnr_db") and got.psnr_db == 20.0
    assert list(got.symbols) == [0.5, -1.0, 0.25]
    assert got.timings.encode_s == pytest.approx(0.002)


def test_reply_round_trip() -> None:
    reply = pb.InferenceReply(
        request_id="r1",
        probabilities=[0.1, 0.9],
        label=1,
        csi=pb.ChannelState(psnr_db=20.0, noise_var=0.01, has_pilot_estimate=True),
        n_symbols=3,
        airtime_s=3 / 9600,
        timings=pb.Timings(decode_s=0.004, edge_total_s=0.005),
    )
    assert pb.InferenceReply.FromString(reply.SerializeToString()) == reply


def test_services_and_profiles_exist() -> None:
    assert pb.DESCRIPTOR.package == "coinference.v1"
    channel = pb.DESCRIPTOR.services_by_name["Channel"]
    edge = pb.DESCRIPTOR.services_by_name["Edge"]
    assert {m.name for m in channel.methods} == {
        "Transmit",
        "SetPsnr",
        "SetProfile",
        "GetState",
        "GetEdgeInfo",
        "SetLinkMode",  # digital link
        "TransmitBatch",  # coalesced transmissions
        "SetFading",  # block fading
        "TransmitStream",  # one long-lived stream per device
    }
    stream = channel.methods_by_name["TransmitStream"]
    assert stream.client_streaming and stream.server_streaming
    assert stream.output_type.name == "BatchItemReply"
    assert "request_id" in pb.BatchItemReply.DESCRIPTOR.fields_by_name
    assert {m.name for m in edge.methods} == {"Decode", "GetInfo", "DecodeBatch"}
    assert hasattr(pb_grpc, "ChannelStub") and hasattr(pb_grpc, "EdgeStub")
    request = pb.SetProfileRequest(random_walk=pb.RandomWalkProfile(low_db=5, high_db=15))
    assert request.WhichOneof("profile") == "random_walk"


def test_contract_has_no_unread_fields() -> None:
    """level_indices skipped the channel's noise and nobody read it; the device-side timings
    never travelled: all reserved, so no one can fill them by mistake."""
    assert "level_indices" not in pb.Transmission.DESCRIPTOR.fields_by_name
    timings = pb.Timings.DESCRIPTOR.fields_by_name
    assert not {"device_total_s", "device_to_channel_s", "total_s"} & set(timings)
