"""The load tool's two ways to the channel (tools/devices/transports.py) against the channel's
own gRPC server on loopback, its edge an in-process stand-in: the same replies over unary
calls and over one stream per device; a slow edge is the driver's DEADLINE_EXCEEDED and a
dead one UNAVAILABLE on both; the flag and the run names."""

from __future__ import annotations

import argparse
import asyncio

import grpc
import pytest

from channel.metrics import ChannelMetrics
from channel.server import ChannelServicer
from channel.service import ChannelService
from tests.loopback import service_grpc_server
from tests.stand_ins import device_transmission, slow_edge
from tools.devices.cli import run_name, transport_list
from tools.devices.driver import open_channels
from tools.devices.transports import TRANSPORTS, Failed

N_DEVICES = 6


async def outcomes(transport: str, edge, deadline_s: float = 2.0) -> dict[str, object]:
    """Three requests per device through ``transport``: each request id's label, or the
    status name it failed with."""
    service = ChannelService(edge, seed=0, edge_batch_call=edge.batch, metrics=ChannelMetrics())
    async with service_grpc_server("Channel", ChannelServicer(service), service.metrics) as target:
        channels = open_channels(target, 2)
        carrier = TRANSPORTS[transport](channels, N_DEVICES)
        await carrier.open()

        async def one(device: int, k: int) -> tuple[str, object]:
            rid = f"dev-{device * 3 + k}"
            raw = device_transmission(device * 3 + k, rid).SerializeToString()
            try:
                return rid, (await carrier.request(device, rid, raw, deadline_s)).label
            except Failed as exc:
                return rid, exc.code

        try:
            sends = [one(d, k) for d in range(N_DEVICES) for k in range(3)]
            return dict(await asyncio.gather(*sends))
        finally:
            await carrier.close()
            for channel in channels:
                await channel.close()


@pytest.mark.parametrize("transport", ["unary", "stream"])
def test_each_request_gets_its_own_reply(transport: str) -> None:
    got = asyncio.run(outcomes(transport, slow_edge(0.01)))
    assert got == {f"dev-{k}": k % 16 for k in range(3 * N_DEVICES)}


@pytest.mark.parametrize("transport", ["unary", "stream"])
def test_a_slow_edge_is_the_drivers_deadline_and_a_dead_one_unavailable(transport) -> None:
    assert set(asyncio.run(outcomes(transport, slow_edge(0.5), deadline_s=0.1)).values()) == {
        "DEADLINE_EXCEEDED"
    }
    dead = slow_edge()
    dead.down = (grpc.StatusCode.UNAVAILABLE, "connection refused")
    assert set(asyncio.run(outcomes(transport, dead)).values()) == {"UNAVAILABLE"}


def test_transport_lists_and_run_names() -> None:
    assert transport_list("unary,stream") == ["unary", "stream"]
    for bad in ("", "grpc", "unary,http"):
        with pytest.raises(argparse.ArgumentTypeError):
            transport_list(bad)
    row = {"devices": 1000, "edge_replicas": 1, "edge_batching": True, "concurrency": 0,
           "rate_per_device_per_s": 1.0, "transport": "stream"}  # fmt: skip
    assert run_name(row) == "devices-1000x1-batched-stream-rate1.csv"
    row["transport"] = "unary"
    assert run_name(row) == "devices-1000x1-batched-rate1.csv"  # as before streams existed
