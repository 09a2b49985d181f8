"""Request ids: a caller's X-Request-Id is checked and echoed, and the device refuses a reply
that belongs to another request (a real in-process gRPC channel stand-in on loopback)."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from device.app import create_app
from device.channel_client import ChannelClient, ChannelError
from device.encoder import OnnxEncoder
from device.knobs import KnobStore, default_knobs
from device.preprocess import PreprocessError
from device.service import DeviceService, request_id_for
from device.settings import DeviceSettings
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tests.loopback import bare_grpc_server


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((28, 28), 128, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_request_ids_are_checked_and_drawn_when_missing() -> None:
    assert request_id_for("client-7:a.b_c") == "client-7:a.b_c"
    drawn = {request_id_for(None) for _ in range(100)}
    assert len(drawn) == 100 and all(len(i) == 32 for i in drawn)
    for bad in ["", "has space", "x" * 129, "semi;colon", "ünï"]:
        with pytest.raises(PreprocessError, match="X-Request-Id") as caught:
            request_id_for(bad)
        assert caught.value.status == 400


def test_a_malformed_request_id_header_is_a_400(quick_model_dir) -> None:
    settings = DeviceSettings(model=quick_model_dir, channel="127.0.0.1:9")
    with TestClient(create_app(settings)) as client:
        reply = client.post(
            "/v1/infer",
            content=png(),
            headers={"Content-Type": "image/png", "X-Request-Id": "two words"},
        )
    assert reply.status_code == 400
    assert "X-Request-Id" in reply.json()["detail"]


class StandInChannel(pb_grpc.ChannelServicer):
    """Answers Transmit with uniform probabilities under ``reply_id`` (None: the request's)."""

    def __init__(self, reply_id: str | None) -> None:
        self.reply_id = reply_id

    async def GetState(self, request, context):
        return pb.ChannelState(psnr_db=20.0, noise_var=0.01)

    async def Transmit(self, request, context):
        request_id = self.reply_id if self.reply_id is not None else request.request_id
        return pb.InferenceReply(request_id=request_id, probabilities=[0.1] * 10)


async def infer_through(model_dir, reply_id: str | None, request_id: str) -> dict:
    async with bare_grpc_server("Channel", StandInChannel(reply_id)) as target:
        encoder = OnnxEncoder(model_dir)
        service = DeviceService(
            encoder,
            ChannelClient(target, deadline_s=5.0),
            KnobStore(encoder.manifest, default_knobs(encoder.manifest)),
        )
        try:
            return await service.infer_image(png(), request_id)
        finally:
            await service.close()


def test_the_reply_echoes_the_callers_request_id(quick_model_dir) -> None:
    result = asyncio.run(infer_through(quick_model_dir, None, "mine-1"))
    assert result["request_id"] == "mine-1"


def test_a_reply_for_another_request_is_refused_with_502(quick_model_dir) -> None:
    with pytest.raises(ChannelError) as caught:
        asyncio.run(infer_through(quick_model_dir, "someone-else", "mine-2"))
    assert caught.value.status == 502
    assert "'someone-else'" in str(caught.value) and "'mine-2'" in str(caught.value)
