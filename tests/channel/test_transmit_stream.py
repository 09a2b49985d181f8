"""TransmitStream (channel/streams.py) over real loopback sockets: the channel's own gRPC
server and servicer over a ChannelService whose edge is an in-process stand-in. Clients are
the plain generated stub, as any gRPC client of the proto would be."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

import grpc
import pytest

from channel.metrics import ChannelMetrics
from channel.server import ChannelServicer
from channel.service import ChannelService
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.errors import status_of
from tests.loopback import service_grpc_server
from tests.stand_ins import StandInHop, device_transmission, slow_edge

OK = grpc.StatusCode.OK.value[0]


def channel_over(edge: StandInHop, **kwargs) -> ChannelService:
    return ChannelService(edge, seed=0, edge_batch_call=edge.batch, metrics=ChannelMetrics(),
                          **kwargs)  # fmt: skip


async def requests(transmissions: Iterable[pb.Transmission]) -> AsyncIterator[pb.Transmission]:
    for transmission in transmissions:
        yield transmission


async def stream_all(service: ChannelService, transmissions, timeout_s=None, **server_args):
    """Every transmission on one TransmitStream of a channel serving ``service``; the
    replies in the order they came."""
    servicer = ChannelServicer(service, server_args.pop("stream_in_flight", 64))
    async with service_grpc_server("Channel", servicer, service.metrics, **server_args) as target:
        async with grpc.aio.insecure_channel(target) as channel:
            call = pb_grpc.ChannelStub(channel).TransmitStream(
                requests(transmissions), timeout=timeout_s
            )
            return [item async for item in call]


def test_every_item_gets_its_own_reply_by_request_id() -> None:
    service = channel_over(slow_edge(), edge_in_flight=1)
    sent = [device_transmission(k) for k in range(40)]
    items = asyncio.run(stream_all(service, sent))
    assert sorted(i.request_id for i in items) == sorted(t.request_id for t in sent)
    assert all(i.code == OK and i.reply.request_id == i.request_id for i in items)
    assert all(i.reply.label == int(i.request_id.split("-")[1]) % 16 for i in items)
    assert all(i.reply.csi.psnr_db == 40.0 for i in items)  # each its own link PSNR
    assert service.metrics.requests_with("TransmitStream.item", "OK") == 40
    assert service.metrics.requests_with("TransmitStream", "OK") == 1  # the call, whole


def test_replies_come_in_completion_order() -> None:
    edge = StandInHop(delay_s=0.3)  # "quick-*" ids are answered after 50 ms
    service = channel_over(edge, edge_batching=False)
    sent = [device_transmission(0, "slow-0"), device_transmission(1, "quick-1")]
    items = asyncio.run(stream_all(service, sent))
    assert [i.request_id for i in items] == ["quick-1", "slow-0"]
    assert [i.reply.request_id for i in items] == ["quick-1", "slow-0"]


def test_invalid_items_fail_alone_and_the_stream_goes_on() -> None:
    service = channel_over(slow_edge(), edge_in_flight=1)
    sent = [device_transmission(k) for k in range(12)]
    sent[3].link_psnr_db = 99.0  # the channel refuses it: outside [-10, 60] dB
    sent[5] = device_transmission(5, "bad-5")  # the edge refuses it (another model id)
    sent[7].group_id = "x" * 1000  # an invalid group id
    items = {i.request_id: i for i in asyncio.run(stream_all(service, sent))}
    codes = {rid: status_of(i.code) for rid, i in items.items() if i.code != OK}
    assert codes == {
        "dev-3": grpc.StatusCode.INVALID_ARGUMENT,
        "bad-5": grpc.StatusCode.FAILED_PRECONDITION,
        "dev-7": grpc.StatusCode.INVALID_ARGUMENT,
    }
    assert "link_psnr_db" in items["dev-3"].message and items["bad-5"].message
    assert len(items) == 12 and all(not i.HasField("reply") for i in items.values() if i.code)


def test_an_edge_that_dies_fails_its_items_unavailable_then_the_stream_recovers() -> None:
    edge = slow_edge(delay_s=0.02)
    service = channel_over(edge, edge_in_flight=1)

    async def run() -> list[pb.BatchItemReply]:
        async def paced() -> AsyncIterator[pb.Transmission]:
            for k in range(30):
                if k == 10:
                    edge.down = (grpc.StatusCode.UNAVAILABLE, "connection reset")  # killed
                if k == 20:
                    edge.down = None  # restarted
                yield device_transmission(k)
                await asyncio.sleep(0.04)  # each item answered before the next

        servicer = ChannelServicer(service)
        async with service_grpc_server("Channel", servicer, service.metrics) as target:
            async with grpc.aio.insecure_channel(target) as channel:
                call = pb_grpc.ChannelStub(channel).TransmitStream(paced())
                return [item async for item in call]

    items = {i.request_id: i for i in asyncio.run(run())}
    down = {f"dev-{k}" for k in range(10, 20)}
    assert {rid for rid, i in items.items() if i.code} == down
    assert {i.code for rid, i in items.items() if rid in down} == {
        grpc.StatusCode.UNAVAILABLE.value[0]
    }
    assert all(items[f"dev-{k}"].reply.label == k % 16 for k in (*range(10), *range(20, 30)))


def test_deadline_per_item_is_the_streams_time_left_within_the_channels() -> None:
    edge = StandInHop()
    service = channel_over(edge, edge_batching=False, deadline_s=2.0)
    asyncio.run(stream_all(service, [device_transmission(k) for k in range(3)]))
    assert edge.timeouts == [2.0] * 3  # no stream deadline: the channel's own
    edge.timeouts.clear()
    asyncio.run(stream_all(service, [device_transmission(k) for k in range(3)], timeout_s=1.0))
    # the stream's time left as the server sees it: gRPC sends the client's timeout in the
    # grpc-timeout header, rounded up to a value the header can carry, and the server counts
    # it from when the call arrived, so it can exceed 1.0 s by a few ms (1.009 s seen in a
    # clean-clone run); far below the channel's own 2 s either way
    assert all(0.5 < t <= 1.05 for t in edge.timeouts), edge.timeouts


class GatedEdge(StandInHop):
    """An edge whose calls wait for ``gate``; ``most_out`` is the most calls out at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.out = self.most_out = 0

    async def __call__(self, transmission, timeout_s=None):
        self.out += 1
        self.most_out = max(self.most_out, self.out)
        try:
            await self.gate.wait()
            return await super().__call__(transmission, timeout_s)
        finally:
            self.out -= 1


def test_backpressure_reads_no_more_than_the_bound() -> None:
    async def run() -> tuple[int, list, int]:
        edge = GatedEdge()
        service = channel_over(edge, edge_batching=False)
        servicer = ChannelServicer(service, stream_in_flight=4)
        async with service_grpc_server("Channel", servicer, service.metrics) as target:
            async with grpc.aio.insecure_channel(target) as channel:
                call = pb_grpc.ChannelStub(channel).TransmitStream(
                    requests(device_transmission(k) for k in range(20))
                )
                await asyncio.sleep(0.5)  # the client has sent all 20; the channel read 4
                held = len(edge.received) + edge.out
                edge.gate.set()
                items = [item async for item in call]
        return held, items, edge.most_out

    held, items, most_out = asyncio.run(run())
    assert held == 4 and most_out == 4
    assert len(items) == 20 and all(i.code == OK for i in items)


def test_a_client_that_cancels_leaves_no_task_and_the_channel_serving(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    # the edge answers one call at a time, each after 1 s: the 10 items stay in flight at the
    # channel for at least 1 s, a window the waits below cannot miss on a loaded machine
    edge = slow_edge(delay_s=1.0)
    service = channel_over(edge, edge_in_flight=1)

    def item_tasks() -> int:
        names = [getattr(t.get_coro(), "__qualname__", "") for t in asyncio.all_tasks()]
        return names.count("TransmitStream._answer")

    async def until(done, within_s: float = 0.9) -> int:
        """Polls ``item_tasks`` until ``done`` holds for the count or ``within_s`` pass."""
        deadline = asyncio.get_running_loop().time() + within_s
        while not done(count := item_tasks()) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        return count

    async def run() -> tuple[int, int, list, pb.InferenceReply]:
        servicer = ChannelServicer(service)
        async with service_grpc_server("Channel", servicer, service.metrics) as target:
            async with grpc.aio.insecure_channel(target) as channel:
                stub = pb_grpc.ChannelStub(channel)
                call = stub.TransmitStream(requests(device_transmission(k) for k in range(10)))
                in_flight = await until(lambda n: n == 10)  # all 10 read and in flight
                call.cancel()
                left = await until(lambda n: n == 0)
                again = [i async for i in stub.TransmitStream(requests([device_transmission(1)]))]
                unary = await stub.Transmit(device_transmission(2), timeout=5)
        return in_flight, left, again, unary

    in_flight, left, again, unary = asyncio.run(run())
    assert in_flight == 10 and left == 0
    assert again[0].code == OK and again[0].reply.label == 1 and unary.label == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert service.metrics.requests_with("TransmitStream", "CANCELLED") == 1


def test_a_message_over_the_limit_ends_the_stream_resource_exhausted() -> None:
    service = channel_over(slow_edge())
    big = device_transmission(0)
    big.symbols.extend([0.0] * 2000)  # > 4 kB
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        asyncio.run(stream_all(service, [device_transmission(1), big], max_message_bytes=4096))
    assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--max-message-bytes" in failed.value.details()
