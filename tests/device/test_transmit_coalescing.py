"""The device's coalescing of transmissions, against stand-in channels on loopback.

Requests that arrive while ``max_in_flight`` calls are out go together in one TransmitBatch;
each keeps its own reply, error and deadline; a channel without TransmitBatch gets one
Transmit per request; grouped (QML-IB) transmissions always go alone."""

from __future__ import annotations

import asyncio

import pytest

from device.channel_client import ChannelClient, ChannelRejected, ChannelUnavailable
from shared.rpc import coinference_pb2 as pb
from tests.loopback import bare_grpc_server
from tests.stand_ins import ChannelStandIn, StandInHop


def stand_in_channel(delay_s: float = 0.02, batches: bool = True) -> StandInHop:
    """A channel that answers after ``delay_s`` with the number of symbols as the label;
    request ids starting with "bad" are refused (per item), "quick" ones answered after 50 ms;
    ``batches=False`` leaves TransmitBatch unimplemented (as a channel that predates it)."""
    return StandInHop(
        lambda t: pb.InferenceReply(request_id=t.request_id, label=len(t.symbols)),
        delay_s=delay_s,
        no_batches=not batches,
    )


async def run_against(stand_in: StandInHop, requests, **client_args):
    async with bare_grpc_server("Channel", ChannelStandIn(stand_in)) as target:
        client = ChannelClient(target, deadline_s=5.0, **client_args)
        try:
            return await asyncio.gather(
                *(client.transmit(t, timeout) for t, timeout in requests), return_exceptions=True
            )
        finally:
            await client.close()


def request(request_id: str, n: int = 3, group: str = "") -> pb.Transmission:
    return pb.Transmission(request_id=request_id, symbols=[0.5] * n, group_id=group)


def test_concurrent_requests_batch_and_each_gets_its_own_outcome() -> None:
    stand_in = stand_in_channel()
    requests = [(request(f"bad-{i}" if i % 7 == 3 else f"ok-{i}", n=i + 1), None)
                for i in range(40)]  # fmt: skip
    calls: list[int] = []
    results = asyncio.run(
        run_against(stand_in, requests, max_batch=8, max_in_flight=2, on_call=calls.append)
    )
    assert sorted(calls) == sorted([1, 1, *stand_in.batch_sizes])  # what the channel saw
    for i, result in enumerate(results):
        if i % 7 == 3:
            assert isinstance(result, ChannelRejected) and "beta outside" in str(result)
            assert result.status == 422
        else:
            assert result.request_id == f"ok-{i}" and result.label == i + 1
    # the first two went alone (nothing in flight); the rest waited and went in batches of 8
    assert len(stand_in.received) == 2 and max(stand_in.batch_sizes) == 8
    assert 2 + sum(stand_in.batch_sizes) == 40


def test_an_idle_client_sends_at_once_and_max_batch_1_never_batches() -> None:
    stand_in = stand_in_channel(delay_s=0.0)
    asyncio.run(run_against(stand_in, [(request("only"), None)]))
    assert stand_in.received_ids == ["only"] and stand_in.batch_sizes == []
    stand_in = stand_in_channel()
    requests = [(request(f"r{i}"), None) for i in range(10)]
    results = asyncio.run(run_against(stand_in, requests, max_batch=1))
    assert [r.request_id for r in results] == [f"r{i}" for i in range(10)]
    assert len(stand_in.received) == 10 and stand_in.batch_sizes == []


def test_a_channel_without_transmit_batch_gets_one_call_per_request() -> None:
    stand_in = stand_in_channel(batches=False)
    requests = [(request(f"r{i}"), None) for i in range(12)]
    calls: list[int] = []  # on_call: the size of every Transmit(Batch) call started
    results = asyncio.run(
        run_against(stand_in, requests, max_batch=8, max_in_flight=1, on_call=calls.append)
    )
    assert [r.request_id for r in results] == [f"r{i}" for i in range(12)]
    assert sorted(stand_in.received_ids) == sorted(f"r{i}" for i in range(12))
    # one refused TransmitBatch of 8, then one Transmit per request
    assert sorted(calls) == [1] * 12 + [8]


def test_grouped_transmissions_always_go_alone() -> None:
    stand_in = stand_in_channel()
    requests = [(request(f"g{i}", group=f"obs-{i}"), None) for i in range(6)]
    results = asyncio.run(run_against(stand_in, requests, max_batch=8, max_in_flight=1))
    assert [r.request_id for r in results] == [f"g{i}" for i in range(6)]
    assert len(stand_in.received) == 6 and stand_in.batch_sizes == []


def test_each_request_keeps_its_own_deadline() -> None:
    stand_in = stand_in_channel(delay_s=0.3)
    requests = [(request("patient"), 2.0), (request("hasty"), 0.05), (request("calm"), 2.0)]
    results = asyncio.run(run_against(stand_in, requests, max_batch=8, max_in_flight=1))
    assert results[0].request_id == "patient" and results[2].request_id == "calm"
    assert isinstance(results[1], ChannelUnavailable) and "0.05 s deadline" in str(results[1])


def test_a_failed_batch_call_fails_its_items_with_the_calls_status() -> None:
    async def scenario():
        client = ChannelClient("127.0.0.1:9", deadline_s=0.5, max_in_flight=1)  # nothing there
        try:
            return await asyncio.gather(
                *(client.transmit(request(f"r{i}")) for i in range(5)), return_exceptions=True
            )
        finally:
            await client.close()

    results = asyncio.run(scenario())
    assert all(isinstance(r, ChannelUnavailable) and r.status == 503 for r in results)


@pytest.mark.parametrize("bad", [{"max_batch": 0}, {"max_in_flight": 0}])
def test_bad_coalescing_settings_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        ChannelClient("127.0.0.1:9", **bad)


def test_close_fails_waiting_and_in_flight_requests_at_once() -> None:
    async def scenario():
        stand_in = stand_in_channel(delay_s=5.0)
        async with bare_grpc_server("Channel", ChannelStandIn(stand_in)) as target:
            client = ChannelClient(target, deadline_s=10.0, max_batch=4, max_in_flight=1)
            ids = ["quick"] + [f"r{i}" for i in range(1, 9)]
            calls = [asyncio.ensure_future(client.transmit(request(i))) for i in ids]
            # "quick" goes alone and returns after 50 ms; then r1..r4 leave as one batch (in
            # flight for 5 s) while r5..r8 wait
            await asyncio.sleep(0.3)
            batches = list(stand_in.batch_sizes)
            loop = asyncio.get_running_loop()
            start = loop.time()
            await client.close()
            results = await asyncio.gather(*calls, return_exceptions=True)
            return results, batches, loop.time() - start

    results, batches, took = asyncio.run(scenario())
    assert results[0].request_id == "quick" and batches == [4]
    assert took < 2.0  # nobody waits out the 10 s deadline
    assert all(isinstance(r, ChannelUnavailable) for r in results[1:]), results
