"""The channel's batching toward the edge (channel/forwarding.py), without sockets: unary
Transmit calls from different devices that arrive while calls to the edge are out go in one
DecodeBatch, each with its own noise, deadline, status and reply."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from channel.service import ChannelService
from channel.settings import parse_settings
from shared.service.errors import ServiceError
from tests.stand_ins import StandInHop, device_transmission, slow_edge


def service_over(edge: StandInHop, **kwargs) -> ChannelService:
    return ChannelService(edge, seed=0, edge_batch_call=edge.batch, **kwargs)


async def transmit_all(service: ChannelService, transmissions, remaining_s=None) -> list:
    return await asyncio.gather(
        *(service.transmit(t, remaining_s) for t in transmissions), return_exceptions=True
    )


def test_concurrent_transmissions_go_to_the_edge_in_batches() -> None:
    edge = slow_edge()
    service = service_over(edge, edge_batch=16, edge_in_flight=2)
    replies = asyncio.run(transmit_all(service, [device_transmission(k) for k in range(40)]))
    assert [r.request_id for r in replies] == [f"dev-{k}" for k in range(40)]
    assert [r.label for r in replies] == [k % 16 for k in range(40)]  # each its own reply
    assert len(edge.received) == 2  # the first two went at once, the rest waited
    assert edge.batch_sizes == [16, 16, 6]
    # each item met its own noise: no two received vectors alike, none equal to what was sent
    received = [tuple(t.symbols) for b in edge.batches for t in b]
    assert len(set(received)) == len(received)
    assert all(r.csi.psnr_db == 40.0 and r.timings.channel_total_s > 0 for r in replies)
    samples = {s.name: s.value for s in service.metrics.edge_batch_size.collect()[0].samples}
    assert samples["coinference_channel_edge_batch_size_count"] == 5  # calls to the edge
    assert samples["coinference_channel_edge_batch_size_sum"] == 40  # every item once


def test_batching_off_sends_one_decode_per_transmission() -> None:
    edge = slow_edge()
    service = service_over(edge, edge_batching=False)
    replies = asyncio.run(transmit_all(service, [device_transmission(k) for k in range(20)]))
    assert [r.label for r in replies] == [k % 16 for k in range(20)]
    assert len(edge.received) == 20 and edge.batches == []


def test_an_item_the_edge_refuses_fails_alone() -> None:
    edge = slow_edge()
    service = service_over(edge, edge_in_flight=1)
    ids = [f"bad-{k}" if k in (5, 9) else None for k in range(12)]
    results = asyncio.run(
        transmit_all(service, [device_transmission(k, ids[k]) for k in range(12)])
    )
    failed = [k for k, r in enumerate(results) if isinstance(r, ServiceError)]
    assert failed == [5, 9]
    assert {results[k].code for k in failed} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert all(results[k].label == k % 16 for k in range(12) if k not in failed)
    assert max(len(b) for b in edge.batches) > 1


def test_an_invalid_transmission_fails_before_the_batch_and_alone() -> None:
    edge = slow_edge()
    service = service_over(edge, edge_in_flight=1)
    transmissions = [device_transmission(k) for k in range(8)]
    transmissions[3].link_psnr_db = 99.0  # outside [-10, 60] dB
    results = asyncio.run(transmit_all(service, transmissions))
    assert isinstance(results[3], ServiceError)
    assert results[3].code == grpc.StatusCode.INVALID_ARGUMENT
    assert "link_psnr_db" in results[3].message
    assert all(not isinstance(r, Exception) for k, r in enumerate(results) if k != 3)
    sent = [t.request_id for t in edge.received] + [t.request_id for b in edge.batches for t in b]
    assert "dev-3" not in sent and len(sent) == 7


def test_an_edge_that_dies_mid_batch_fails_only_the_items_in_flight() -> None:
    edge = slow_edge(delay_s=0.05)
    service = service_over(edge, edge_in_flight=1)

    async def run() -> tuple[list, list]:
        first = asyncio.gather(
            *(service.transmit(device_transmission(k)) for k in range(10)),
            return_exceptions=True,
        )
        await asyncio.sleep(0.07)  # the lone first call is done, the batch of 9 is out
        edge.down = (grpc.StatusCode.UNAVAILABLE, "connection reset")  # a replica killed
        failed = await first
        edge.down = None  # back (or another replica): later transmissions are served
        return failed, await transmit_all(service, [device_transmission(k) for k in range(5)])

    during, after = asyncio.run(run())
    assert during[0].label == 0
    assert all(isinstance(r, ServiceError) and r.code == grpc.StatusCode.UNAVAILABLE
               for r in during[1:])  # fmt: skip
    assert [r.label for r in after] == [0, 1, 2, 3, 4]


def test_grouped_transmissions_go_alone_by_their_group() -> None:
    edge = slow_edge()
    service = service_over(edge, edge_in_flight=1)
    transmissions = [device_transmission(k, group=f"obs-{k // 2}") for k in range(6)]
    transmissions += [device_transmission(k) for k in range(6, 12)]
    results = asyncio.run(transmit_all(service, transmissions))
    assert all(not isinstance(r, Exception) for r in results)
    assert sorted(t.request_id for t in edge.received if t.group_id) == [
        f"dev-{k}" for k in range(6)
    ]
    assert all(not t.group_id for b in edge.batches for t in b)


def test_a_waiting_transmission_keeps_its_own_deadline() -> None:
    edge = slow_edge(delay_s=0.3)
    service = service_over(edge, edge_in_flight=1)

    async def run() -> list:
        first = asyncio.ensure_future(service.transmit(device_transmission(0), 5.0))
        await asyncio.sleep(0.01)
        short = asyncio.ensure_future(service.transmit(device_transmission(1), 0.05))
        long = asyncio.ensure_future(service.transmit(device_transmission(2), 5.0))
        return await asyncio.gather(first, short, long, return_exceptions=True)

    first, short, long = asyncio.run(run())
    assert first.label == 0 and long.label == 2
    assert isinstance(short, ServiceError) and short.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert [t.request_id for t in edge.received] == ["dev-0", "dev-2"]  # never sent: expired


def test_calls_in_flight_default_to_one_per_replica_the_target_names() -> None:
    replicas = "ipv4:127.0.0.1:50061,127.0.0.1:50062,127.0.0.1:50063"
    assert parse_settings(["--edge", replicas]).edge_calls_in_flight() == 3
    assert parse_settings(["--edge", "localhost:50052"]).edge_calls_in_flight() == 1
    assert parse_settings(["--edge", "dns:///edge_server:50052"]).edge_calls_in_flight() == 1
    settings = parse_settings(["--edge", replicas, "--edge-in-flight", "5"])
    assert settings.edge_calls_in_flight() == 5


def test_batching_flags_are_checked() -> None:
    settings = parse_settings(["--edge-batching", "off", "--edge-batch-delay-ms", "2.5"])
    assert settings.edge_batching is False and settings.edge_batch_delay_ms == 2.5
    for bad in (["--edge-batch", "0"], ["--edge-batch", "257"], ["--edge-in-flight", "0"],
                ["--edge-batch-delay-ms", "-1"], ["--edge-batching", "maybe"]):  # fmt: skip
        with pytest.raises(SystemExit) as exited:
            parse_settings(bad)
        assert exited.value.code == 2
