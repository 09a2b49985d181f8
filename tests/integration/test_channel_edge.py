"""Channel proxy + edge server as real processes on loopback, with the real quick model."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.manifest import load_manifest
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tests.procs import running_stack, wait_for_http

REPO = Path(__file__).resolve().parents[2]
N_PILOTS = 1024
DEADLINE_S = 1.0


@pytest.fixture(scope="module")
def model_dir(request) -> str:
    """The lead's session fixture ``quick_model_dir`` when present, else artifacts/quick."""
    try:
        return str(request.getfixturevalue("quick_model_dir"))
    except pytest.FixtureLookupError:
        path = REPO / "artifacts" / "quick"
        if not (path / "manifest.json").is_file():
            pytest.skip("no quick model: python -m trainer train --quick --out artifacts/quick")
        return str(path)


@pytest.fixture(scope="module")
def manifest(model_dir):
    return load_manifest(model_dir)


EDGE_FLAGS = ["--device", "cpu", "--max-queue-delay-us", 500, "--grace-s", 1]
CHANNEL_FLAGS = ["--deadline-s", DEADLINE_S, "--grace-s", 1]
START_TIMEOUT_S = {"edge": 90, "channel": 30}


@pytest.fixture(scope="module")
def stack(model_dir):
    with running_stack(
        model_dir,
        None,  # the channel's default PSNR (20 dB)
        services=["edge", "channel"],
        edge_flags=EDGE_FLAGS,
        channel_flags=[*CHANNEL_FLAGS, "--pilots", N_PILOTS, "--seed", 7],
        metrics_ports=True,
        start_timeout_s=START_TIMEOUT_S,
    ) as live:
        with (
            grpc.insecure_channel(live.channel_target) as grpc_channel,
            grpc.insecure_channel(live.edge_target) as edge_channel,
        ):
            yield {
                "ports": {
                    "edge": live.ports["edge"],
                    "edge_metrics": live.metrics_ports["edge"],
                    "channel": live.ports["channel"],
                    "channel_metrics": live.metrics_ports["channel"],
                },
                "channel": pb_grpc.ChannelStub(grpc_channel),
                "edge": pb_grpc.EdgeStub(edge_channel),
                "grpc_channels": {"channel": grpc_channel, "edge": edge_channel},
            }


def transmission(manifest, **overrides) -> pb.Transmission:
    rng = np.random.default_rng(0)
    fields = dict(
        request_id="req",
        model_id=manifest.model_id,
        beta=1e-3,
        snr_db=10.0,
        d=manifest.d,
        symbols=np.tanh(rng.normal(size=manifest.d)).tolist(),
    )
    fields.update(overrides)
    return pb.Transmission(**fields)


def test_health_is_serving(stack) -> None:
    for name, service in (("channel", "coinference.v1.Channel"), ("edge", "coinference.v1.Edge")):
        stub = health_pb2_grpc.HealthStub(stack["grpc_channels"][name])
        for service_name in ("", service):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service_name), timeout=2)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_services(stack) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    names = set(ProtoReflectionDescriptorDatabase(stack["grpc_channels"]["edge"]).get_services())
    assert {"coinference.v1.Edge", "grpc.health.v1.Health"} <= names


def test_get_info_matches_manifest(stack, manifest) -> None:
    info = stack["edge"].GetInfo(pb.GetInfoRequest(), timeout=2)
    assert info.model_id == manifest.model_id and info.d == manifest.d
    assert (info.beta_min, info.beta_max) == manifest.beta_range
    assert info.device == "cpu"


def test_transmit_returns_decoded_reply_with_timings(stack, manifest) -> None:
    start = time.perf_counter()
    reply = stack["channel"].Transmit(transmission(manifest), timeout=3)
    span = time.perf_counter() - start
    assert reply.model_id == manifest.model_id and reply.request_id == "req"
    if manifest.task == "classification":
        assert len(reply.probabilities) == manifest.n_classes
        assert sum(reply.probabilities) == pytest.approx(1.0, abs=1e-4)
    assert reply.n_symbols == manifest.d
    assert reply.airtime_s == pytest.approx((manifest.d + N_PILOTS) / 9600)
    t = reply.timings
    assert 0 < t.decode_s <= t.edge_total_s <= t.channel_total_s <= span
    assert t.channel_s > 0 and t.channel_to_edge_s >= 0 and t.edge_queue_s >= 0
    assert reply.csi.psnr_db == 20.0 and reply.csi.has_pilot_estimate


def test_wrong_model_id_is_failed_precondition(stack, manifest) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stack["channel"].Transmit(transmission(manifest, model_id="not-this-one"), timeout=3)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "model id mismatch" in info.value.details()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"symbols": [0.1, float("nan")]}, "NaN"),
        ({"symbols": [0.1] * 1000}, "more than the model's d"),
        ({"beta": 5.0}, "beta=5.0 outside the trained range"),
        ({"beta": 0.0}, "beta=0.0 outside"),
        ({"snr_db": 99.0}, "snr_db=99.0 outside the trained range"),
    ],
)
def test_bad_transmission_is_invalid_argument_and_server_keeps_serving(
    stack, manifest, overrides, message
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stack["channel"].Transmit(transmission(manifest, **overrides), timeout=3)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()
    assert stack["channel"].Transmit(transmission(manifest), timeout=3).probabilities


@pytest.mark.parametrize("psnr_db", [5.0, 15.0, 25.0])
def test_set_psnr_changes_pilot_measured_noise(stack, manifest, psnr_db) -> None:
    state = stack["channel"].SetPsnr(pb.SetPsnrRequest(psnr_db=psnr_db), timeout=2)
    assert state.psnr_db == psnr_db
    estimates = [
        stack["channel"].Transmit(transmission(manifest), timeout=3).csi.noise_var_estimate
        for _ in range(16)
    ]  # 16 x 1024 pilots: relative s.d. of the mean ~1.1 %
    assert np.mean(estimates) == pytest.approx(10 ** (-psnr_db / 10), rel=0.05)
    stack["channel"].SetPsnr(pb.SetPsnrRequest(psnr_db=20.0), timeout=2)


@pytest.mark.parametrize("psnr_db", [float("nan"), float("inf"), 61.0, -11.0])
def test_set_psnr_rejects_bad_values(stack, psnr_db) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stack["channel"].SetPsnr(pb.SetPsnrRequest(psnr_db=psnr_db), timeout=2)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stack["channel"].GetState(pb.GetStateRequest(), timeout=2).psnr_db == 20.0


def test_set_profile_trace_and_random_walk(stack) -> None:
    channel = stack["channel"]
    trace = pb.TraceProfile(
        points=[pb.TracePoint(time_s=0, psnr_db=12), pb.TracePoint(time_s=60, psnr_db=3)]
    )
    assert channel.SetProfile(pb.SetProfileRequest(trace=trace), timeout=2).psnr_db == 12
    walk = pb.RandomWalkProfile(low_db=4, high_db=8, step_db=1, period_s=30, seed=1)
    state = channel.SetProfile(pb.SetProfileRequest(random_walk=walk), timeout=2)
    assert state.psnr_db == 6 and state.profile.startswith("random walk")
    bad = pb.TraceProfile(
        points=[pb.TracePoint(time_s=1, psnr_db=12), pb.TracePoint(time_s=0, psnr_db=3)]
    )
    with pytest.raises(grpc.RpcError) as info:
        channel.SetProfile(pb.SetProfileRequest(trace=bad), timeout=2)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must be greater" in info.value.details()
    channel.SetPsnr(pb.SetPsnrRequest(psnr_db=20.0), timeout=2)


def test_metrics_endpoints(stack, manifest) -> None:
    stack["channel"].Transmit(transmission(manifest), timeout=3)
    ports = stack["ports"]
    for port, names in (
        (ports["channel_metrics"], ["coinference_channel_psnr_db 20.0",
                                    "coinference_channel_symbols_total",
                                    'coinference_requests_total{code="OK",method="Transmit",'
                                    'service="channel"}',
                                    'coinference_stage_seconds_bucket{le="0.0001",service='
                                    '"channel",stage="channel_to_edge"}']),
        (ports["edge_metrics"], ['coinference_requests_total{code="OK",method="Decode",'
                                 'service="edge"}',
                                 'coinference_requests_total{code="INVALID_ARGUMENT",'
                                 'method="Decode",service="edge"}',
                                 'coinference_request_seconds_count{method="Decode",'
                                 'service="edge"}',
                                 'coinference_stage_seconds_count{service="edge",stage="decode"}',
                                 "coinference_edge_batch_size_bucket"]),
    ):  # fmt: skip
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for_http(url, timeout_s=5)
        text = urllib.request.urlopen(url, timeout=2).read().decode()
        for name in names:
            assert name in text, f"{name} missing from {url}"


def test_stopped_edge_gives_unavailable_within_deadline(model_dir, manifest) -> None:
    with running_stack(
        model_dir,
        None,
        services=["edge", "channel"],
        edge_flags=EDGE_FLAGS,
        channel_flags=CHANNEL_FLAGS,
        start_timeout_s=START_TIMEOUT_S,
    ) as live:
        with grpc.insecure_channel(live.channel_target) as grpc_channel:
            stub = pb_grpc.ChannelStub(grpc_channel)
            assert stub.Transmit(transmission(manifest), timeout=3).probabilities
            # SIGTERM: graceful shutdown, clean exit
            assert live.stop("edge") == {"edge": 0}
            start = time.perf_counter()
            with pytest.raises(grpc.RpcError) as info:
                stub.Transmit(transmission(manifest), timeout=DEADLINE_S + 2)
            elapsed = time.perf_counter() - start
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert live.edge_target in info.value.details()
            assert elapsed < DEADLINE_S + 0.5
        assert live.stop("channel") == {"channel": 0}
