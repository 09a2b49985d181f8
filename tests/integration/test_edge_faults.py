"""Faults with real processes: callers that give up never stop the edge; the device's
readiness tells the truth about the edge behind the channel."""

from __future__ import annotations

import json
import shutil

import grpc
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared.manifest import load_manifest
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tests.procs import running_stack

N_FLOOD = 300
FLOOD_DEADLINE_S = 0.003
N_NORMAL = 40


EDGE_FLAGS = ["--device", "cpu", "--grace-s", 1]


@pytest.fixture(scope="module")
def edge(quick_model_dir):
    with running_stack(
        quick_model_dir, services=["edge"], edge_flags=EDGE_FLAGS, start_timeout_s={"edge": 90}
    ) as stack:
        with grpc.insecure_channel(stack.edge_target) as channel:
            yield {"stack": stack, "channel": channel, "stub": pb_grpc.EdgeStub(channel)}


def transmission(manifest, request_id: str) -> pb.Transmission:
    rng = np.random.default_rng(len(request_id))
    return pb.Transmission(
        request_id=request_id,
        model_id=manifest.model_id,
        beta=1e-3,
        snr_db=10.0,
        d=manifest.d,
        symbols=np.tanh(rng.normal(size=manifest.d)).tolist(),
    )


def test_short_deadline_flood_then_normal_traffic_is_all_served(edge, quick_model_dir) -> None:
    manifest = load_manifest(quick_model_dir)
    stub = edge["stub"]
    flood = [
        stub.Decode.future(transmission(manifest, f"flood-{i}"), timeout=FLOOD_DEADLINE_S)
        for i in range(N_FLOOD)
    ]
    codes = []
    for call in flood:
        try:
            call.result()
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED}
    assert codes.count(grpc.StatusCode.DEADLINE_EXCEEDED) > 0  # the flood did time out

    normal = [
        stub.Decode.future(transmission(manifest, f"normal-{i}"), timeout=1.0)
        for i in range(N_NORMAL)
    ]
    replies = [call.result() for call in normal]  # raises on any failure
    assert [r.request_id for r in replies] == [f"normal-{i}" for i in range(N_NORMAL)]
    assert all(len(r.probabilities) == manifest.n_classes for r in replies)

    health = health_pb2_grpc.HealthStub(edge["channel"])
    status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert edge["stack"].alive()


def test_device_reports_an_edge_with_another_model_and_a_stopped_edge(
    quick_model_dir, tmp_path
) -> None:
    other = tmp_path / "other-model"
    shutil.copytree(quick_model_dir, other)
    manifest_path = other / "manifest.json"
    raw = json.loads(manifest_path.read_text())
    device_model_id, raw["model_id"] = raw["model_id"], "other-model-id"
    manifest_path.write_text(json.dumps(raw))

    with running_stack(
        quick_model_dir,
        None,  # the channel's default PSNR
        edge_model_dir=other,
        edge_flags=EDGE_FLAGS,
        channel_flags=["--grace-s", 1],
        device_flags=["--deadline-s", 1.0],
        device_ready_path="/healthz",  # /readyz is 503 here, which is the point
        start_timeout_s={"edge": 90, "channel": 30},
    ) as stack:
        with httpx.Client(base_url=stack.url, timeout=10.0) as http:
            ready = http.get("/readyz")
            assert ready.status_code == 503, ready.text
            assert ready.json()["edge_model_id"] == "other-model-id"
            assert ready.json()["model_id"] == device_model_id
            assert "other-model-id" in ready.json()["detail"]
            assert device_model_id in ready.json()["detail"]

            infer = http.post("/v1/infer", json={"pixels": np.zeros((28, 28)).tolist()})
            assert infer.status_code == 502, infer.text
            assert "other-model-id" in infer.json()["detail"]
            assert device_model_id in infer.json()["detail"]

            stack.stop("edge")  # no edge behind the channel: not ready either
            ready = http.get("/readyz")
            assert ready.status_code == 503 and "unavailable" in ready.json()["detail"]
