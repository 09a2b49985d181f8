"""Channel proxy + edge server as real processes on loopback, with the real quick model."""

from __future__ import annotations

import sys
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
from tests.procs import ServiceProcess, free_port, wait_for_grpc_health, wait_for_http

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


def start_edge(model_dir: str, port: int, metrics_port: int = 0) -> ServiceProcess:
    proc = ServiceProcess(
        [sys.executable, "-m", "edge_server", "--model", model_dir, "--host", "127.0.0.1",
         "--port", port, "--device", "cpu", "--metrics-port", metrics_port,
         "--max-queue-delay-us", 500, "--grace-s", 1]
    )  # fmt: skip
    try:
        wait_for_grpc_health(f"127.0.0.1:{port}", proc, timeout_s=90)
    except Exception:
        proc.stop()
        raise
    return proc


def start_channel(edge_port: int, port: int, *extra) -> ServiceProcess:
    proc = ServiceProcess(
        [sys.executable, "-m", "channel", "--edge", f"127.0.0.1:{edge_port}", "--host",
         "127.0.0.1", "--port", port, "--deadline-s", DEADLINE_S, "--grace-s", 1, *extra]
    )  # fmt: skip
    try:
        wait_for_grpc_health(f"127.0.0.1:{port}", proc, timeout_s=30)
    except Exception:
        proc.stop()
        raise
    return proc


@pytest.fixture(scope="module")
def stack(model_dir):
    ports = {name: free_port() for name in ("edge", "edge_metrics", "channel", "channel_metrics")}
    edge = start_edge(model_dir, ports["edge"], ports["edge_metrics"])
    try:
        channel = start_channel(
            ports["edge"], ports["channel"], "--pilots", N_PILOTS, "--seed", 7,
            "--metrics-port", ports["channel_metrics"],
        )  # fmt: skip
    except Exception:
        edge.stop()
        raise
    grpc_channel = grpc.insecure_channel(f"127.0.0.1:{ports['channel']}")
    edge_channel = grpc.insecure_channel(f"127.0.0.1:{ports['edge']}")
    yield {
        "ports": ports,
        "channel": pb_grpc.ChannelStub(grpc_channel),
        "edge": pb_grpc.EdgeStub(edge_channel),
        "grpc_channels": {"channel": grpc_channel, "edge": edge_channel},
    }
    grpc_channel.close()
    edge_channel.close()
    for proc in (channel, edge):
        proc.stop()
        proc.cleanup()


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
                                    'coinference_channel_latency_seconds_bucket']),
        (ports["edge_metrics"], ["coinference_edge_requests_total",
                                 'coinference_edge_failures_total{code="INVALID_ARGUMENT"}',
                                 'coinference_edge_latency_seconds_count{stage="decode"}',
                                 "coinference_edge_batch_size_bucket"]),
    ):  # fmt: skip
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for_http(url, timeout_s=5)
        text = urllib.request.urlopen(url, timeout=2).read().decode()
        for name in names:
            assert name in text, f"{name} missing from {url}"


def test_stopped_edge_gives_unavailable_within_deadline(model_dir, manifest) -> None:
    edge_port, channel_port = free_port(), free_port()
    edge = start_edge(model_dir, edge_port)
    try:
        channel = start_channel(edge_port, channel_port)
    except Exception:
        edge.stop()
        raise
    try:
        with grpc.insecure_channel(f"127.0.0.1:{channel_port}") as grpc_channel:
            stub = pb_grpc.ChannelStub(grpc_channel)
            assert stub.Transmit(transmission(manifest), timeout=3).probabilities
            assert edge.stop() == 0  # SIGTERM: graceful shutdown, clean exit
            start = time.perf_counter()
            with pytest.raises(grpc.RpcError) as info:
                stub.Transmit(transmission(manifest), timeout=DEADLINE_S + 2)
            elapsed = time.perf_counter() - start
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert f"127.0.0.1:{edge_port}" in info.value.details()
            assert elapsed < DEADLINE_S + 0.5
    finally:
        assert channel.stop() == 0
        channel.cleanup()
        edge.stop()
        edge.cleanup()
