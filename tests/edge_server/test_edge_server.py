"""The aio gRPC front over EdgeDecoder, in-process on a loopback port: health follows the
decoder, errors keep their status."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge_server.server import SERVICE_NAME, build_server
from edge_server.service import EdgeDecoder
from edge_server.settings import EdgeSettings
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tests.edge_server.test_edge_service import FlakyDecoder, make_manifest, transmission
from tests.procs import free_port

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health_status(channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return reply.status


async def wait_for_status(channel, status: int, timeout_s: float = 3.0) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (got := await health_status(channel)) != status and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return got


@pytest.fixture
def flaky():
    return FlakyDecoder()


@asynccontextmanager
async def serving(
    decoder, inline_decode_max: int = 0
) -> AsyncIterator[tuple[EdgeDecoder, grpc.aio.Channel]]:
    """The edge's gRPC server over ``decoder`` on a free loopback port (batches of at most
    ``inline_decode_max`` decoded on the event loop), and a channel to it; both stopped on
    the way out."""
    settings = EdgeSettings(host="127.0.0.1", port=free_port(), probe_interval_s=0.05)
    edge = EdgeDecoder(decoder, make_manifest(), probe_interval_s=settings.probe_interval_s,
                       inline_decode_max=inline_decode_max)  # fmt: skip
    server = build_server(settings, edge)
    await server.start()
    await edge.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.port}") as channel:
            yield edge, channel
    finally:
        await server.server.stop(0)
        await edge.close()


INLINE = pytest.mark.parametrize("inline", [0, 32], ids=["decoder-thread", "inline"])


@INLINE
async def test_health_follows_whether_the_decoder_runs(flaky, inline) -> None:
    flaky.broken.set()  # the model cannot run from the start
    async with serving(flaky, inline) as (edge, channel):
        assert edge.batcher.inline_max == inline
        for service in ("", SERVICE_NAME):
            assert await health_status(channel, service) == NOT_SERVING
        info = await pb_grpc.EdgeStub(channel).GetInfo(pb.GetInfoRequest(), timeout=2)
        assert info.serving is False and info.model_id == "model-a"
        flaky.broken.clear()
        assert await wait_for_status(channel, SERVING) == SERVING
        flaky.broken.set()  # breaks while serving: the next failed batch shows it
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await pb_grpc.EdgeStub(channel).Decode(transmission(), timeout=2)
        assert failed.value.code() == grpc.StatusCode.INTERNAL
        assert await wait_for_status(channel, NOT_SERVING) == NOT_SERVING


async def test_stopped_worker_is_not_serving(flaky) -> None:
    async with serving(flaky) as (edge, channel):
        assert await health_status(channel) == SERVING
        edge.batcher.worker.cancel()
        assert await wait_for_status(channel, NOT_SERVING) == NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await pb_grpc.EdgeStub(channel).Decode(transmission(), timeout=2)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_errors_keep_their_status_over_grpc(flaky) -> None:
    async with serving(flaky) as (_, channel):
        stub = pb_grpc.EdgeStub(channel)
        for overrides, code in (
            ({"model_id": "other"}, grpc.StatusCode.FAILED_PRECONDITION),
            ({"beta": 7.0}, grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.Decode(transmission(**overrides), timeout=2)
            assert failed.value.code() == code
        reply = await stub.Decode(transmission(), timeout=2)
        assert reply.request_id == "r1" and len(reply.probabilities) == 3


@INLINE
async def test_decode_batch_answers_each_item_with_its_own_status(flaky, inline) -> None:
    """DecodeBatch: good items decode (in the batcher with each other), a bad item gets the
    status Decode would give it, a grouped item is sent to Decode; order is kept (decoded in
    the decoder thread, or on the event loop)."""
    items = [
        transmission(request_id="a"),
        transmission(request_id="b", beta=7.0),  # outside the trained range
        transmission(request_id="c", model_id="other"),
        transmission(request_id="d", group_id="obs-1", link_index=0, n_links=1),
        transmission(request_id="e", symbols=[0.1, 0.2]),
    ]
    async with serving(flaky, inline) as (edge, channel):
        stub = pb_grpc.EdgeStub(channel)
        reply = await stub.DecodeBatch(pb.TransmissionBatch(items=items), timeout=2)
        empty = await stub.DecodeBatch(pb.TransmissionBatch(), timeout=2)
    codes = [grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT,
             grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT,
             grpc.StatusCode.OK]  # fmt: skip
    assert [item.code for item in reply.items] == [code.value[0] for code in codes]
    assert [item.reply.request_id for item in reply.items] == ["a", "", "", "", "e"]
    assert "Decode, not DecodeBatch" in reply.items[3].message
    assert reply.items[1].message and len(reply.items[0].reply.probabilities) == 3
    assert list(empty.items) == []
    assert edge.metrics.requests_with("DecodeBatch.item", "OK") == 2
    assert edge.metrics.requests_with("DecodeBatch.item", "INVALID_ARGUMENT") == 2


async def test_an_oversized_batch_is_refused_whole(flaky) -> None:
    from shared.service.errors import MAX_BATCH_ITEMS

    items = [transmission(request_id=f"r{i}") for i in range(MAX_BATCH_ITEMS + 1)]
    async with serving(flaky) as (_, channel):
        stub = pb_grpc.EdgeStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.DecodeBatch(pb.TransmissionBatch(items=items), timeout=2)
        reply = await stub.DecodeBatch(pb.TransmissionBatch(items=items[:-1]), timeout=5)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"at most {MAX_BATCH_ITEMS}" in failed.value.details()
    assert [item.code for item in reply.items] == [0] * MAX_BATCH_ITEMS
