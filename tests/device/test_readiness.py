"""/readyz and /v1/infer against what the edge behind the channel says, without sockets.

The channel client is replaced by a small in-process stand-in that answers like the channel
(GetState, GetEdgeInfo, Transmit); the encoder is the real quick model in ONNX Runtime.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient

from device.app import create_app
from device.channel_client import ChannelError, ChannelUnavailable
from device.encoder import OnnxEncoder
from device.knobs import KnobStore, default_knobs
from device.metrics import DeviceMetrics
from device.service import DeviceService
from device.settings import DeviceSettings
from shared.rpc import coinference_pb2 as pb


class StandInChannel:
    """Answers like ChannelClient; the edge behind it serves ``edge_model_id``."""

    deadline_s = 2.0

    def __init__(self, edge_model_id: str, serving: bool = True, edge_up: bool = True) -> None:
        self.edge_model_id = edge_model_id
        self.serving = serving
        self.edge_up = edge_up

    async def get_state(self, timeout_s=None) -> pb.ChannelState:
        return pb.ChannelState(psnr_db=20.0, noise_var=0.01)

    async def get_edge_info(self, timeout_s=None) -> pb.EdgeInfo:
        if not self.edge_up:
            raise ChannelUnavailable("channel x / edge: GetEdgeInfo failed: unavailable")
        return pb.EdgeInfo(model_id=self.edge_model_id, serving=self.serving)

    async def transmit(self, transmission: pb.Transmission, timeout_s=None) -> pb.InferenceReply:
        if transmission.model_id != self.edge_model_id:  # what the edge answers, passed on
            raise ChannelError(
                "Transmit refused by the edge: model id mismatch: transmission is for "
                f"{transmission.model_id!r}, this edge serves {self.edge_model_id!r}",
                grpc.StatusCode.FAILED_PRECONDITION,
            )
        return pb.InferenceReply(request_id=transmission.request_id, probabilities=[0.1] * 10)

    async def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def encoder(quick_model_dir) -> OnnxEncoder:
    return OnnxEncoder(quick_model_dir)


def client(encoder, quick_model_dir, channel) -> TestClient:
    manifest = encoder.manifest
    service = DeviceService(
        encoder, channel, KnobStore(manifest, default_knobs(manifest)), DeviceMetrics()
    )
    settings = DeviceSettings(model=quick_model_dir, channel="stand-in:0")
    return TestClient(create_app(settings, service))


PIXELS = {"pixels": np.zeros((28, 28)).tolist()}


def test_ready_when_edge_serves_the_same_model(encoder, quick_model_dir) -> None:
    model_id = encoder.manifest.model_id
    with client(encoder, quick_model_dir, StandInChannel(model_id)) as http:
        reply = http.get("/readyz")
        assert reply.status_code == 200
        body = reply.json()
        assert body["status"] == "ready" and body["edge_serving"] is True
        assert body["model_id"] == body["edge_model_id"] == model_id
        assert http.post("/v1/infer", json=PIXELS).status_code == 200


def test_other_model_id_at_the_edge_is_not_ready_and_infer_is_502(encoder, quick_model_dir):
    model_id = encoder.manifest.model_id
    with client(encoder, quick_model_dir, StandInChannel("other-model")) as http:
        reply = http.get("/readyz")
        assert reply.status_code == 503
        body = reply.json()
        assert body["model_id"] == model_id and body["edge_model_id"] == "other-model"
        assert "other-model" in body["detail"] and model_id in body["detail"]
        infer = http.post("/v1/infer", json=PIXELS)
        assert infer.status_code == 502
        assert "other-model" in infer.json()["detail"] and model_id in infer.json()["detail"]


def test_edge_not_serving_is_not_ready(encoder, quick_model_dir) -> None:
    channel = StandInChannel(encoder.manifest.model_id, serving=False)
    with client(encoder, quick_model_dir, channel) as http:
        reply = http.get("/readyz")
    assert reply.status_code == 503
    assert reply.json()["edge_serving"] is False and "not serving" in reply.json()["detail"]


def test_edge_down_is_not_ready(encoder, quick_model_dir) -> None:
    channel = StandInChannel(encoder.manifest.model_id, edge_up=False)
    with client(encoder, quick_model_dir, channel) as http:
        reply = http.get("/readyz")
    assert reply.status_code == 503 and "unavailable" in reply.json()["detail"]
