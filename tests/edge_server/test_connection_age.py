"""The edge's maximum connection age: clients are moved to new connections (so that a
DNS-balanced channel re-resolves and finds replicas added later) without failing a call."""

from __future__ import annotations

import asyncio

import pytest

from channel.edge_client import EdgeClient
from edge_server.settings import EdgeSettings
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.metrics import ServiceMetrics
from tests.loopback import service_grpc_server


class PeerEdge(pb_grpc.EdgeServicer):
    """Remembers the client address (host:port: one per connection) of every call."""

    def __init__(self) -> None:
        self.peers: list[str] = []

    async def Decode(self, request, context):
        self.peers.append(context.peer())
        return pb.InferenceReply(request_id=request.request_id)


async def calls_over(age_s: float, duration_s: float) -> tuple[int, int, set[str]]:
    settings = EdgeSettings(max_connection_age_s=age_s, grace_s=1.0)
    edge = PeerEdge()
    ok = failed = 0
    async with service_grpc_server(
        "Edge", edge, ServiceMetrics("edge"), options=settings.server_options()
    ) as target:
        client = EdgeClient(target)
        try:
            loop = asyncio.get_running_loop()
            stop_at = loop.time() + duration_s
            while loop.time() < stop_at:
                try:
                    await client.decode(pb.Transmission(request_id="r"), 2.0)
                    ok += 1
                except Exception:
                    failed += 1
                await asyncio.sleep(0.005)
        finally:
            await client.close()
    return ok, failed, set(edge.peers)


def test_connections_are_recycled_at_the_maximum_age_without_failed_calls() -> None:
    ok, failed, peers = asyncio.run(calls_over(age_s=0.3, duration_s=2.0))
    assert failed == 0 and ok > 50
    assert len(peers) >= 3  # a new connection (client port) at least every ~0.3 s


def test_without_an_age_one_connection_serves_everything() -> None:
    ok, failed, peers = asyncio.run(calls_over(age_s=0.0, duration_s=0.5))
    assert failed == 0 and ok > 10 and len(peers) == 1


def test_age_sets_the_grpc_server_options() -> None:
    assert EdgeSettings().server_options() == []
    options = dict(EdgeSettings(max_connection_age_s=30, grace_s=5).server_options())
    assert options == {
        "grpc.max_connection_age_ms": 30_000,
        "grpc.max_connection_age_grace_ms": 5_000,
    }
    with pytest.raises(ValueError):
        EdgeSettings(max_connection_age_s=-1)
