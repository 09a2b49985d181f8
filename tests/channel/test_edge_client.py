"""The channel's client to the edge replicas (channel/edge_client.py) against real in-process
gRPC servers on loopback: round robin, health-checked rotation, group routing."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from channel.edge_client import (
    EDGE_HEALTH_SERVICE,
    EdgeClient,
    check_edge_target,
    check_group_id,
    service_config,
)
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class NamedEdge(pb_grpc.EdgeServicer):
    """Answers every Decode with its replica id."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def Decode(self, request, context):
        return pb.InferenceReply(request_id=request.request_id, replica_id=self.name)


class Replica:
    def __init__(self, name: str) -> None:
        self.name = name
        self.server = grpc.aio.server()
        pb_grpc.add_EdgeServicer_to_server(NamedEdge(name), self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    async def start(self) -> None:
        await self.set(SERVING)
        await self.server.start()

    async def set(self, status) -> None:
        await self.health.set(EDGE_HEALTH_SERVICE, status)


async def replicas_and_client(n: int = 2) -> tuple[list[Replica], EdgeClient]:
    replicas = [Replica(f"r{i}") for i in range(n)]
    for replica in replicas:
        await replica.start()
    target = "ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in replicas)
    return replicas, EdgeClient(target)


async def served_by(client: EdgeClient, n: int, group_id: str = "") -> list[str]:
    replies = []
    for i in range(n):
        transmission = pb.Transmission(request_id=str(i), group_id=group_id)
        replies.append((await client.decode(transmission, 2.0)).replica_id)
    return replies


def counts(names: list[str]) -> dict[str, int]:
    return {name: names.count(name) for name in sorted(set(names))}


async def settle(client: EdgeClient, expected: set[str], group_ids=("",)) -> None:
    """Wait (up to 3 s) until the picks reach exactly ``expected`` replicas."""
    for _ in range(60):
        seen = set()
        for group_id in group_ids:
            seen |= set(await served_by(client, 6, group_id))
        if seen == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"picks never settled on {expected} (last {seen})")


def run(coro):
    return asyncio.run(coro)


def test_round_robin_spreads_evenly_over_replicas() -> None:
    async def scenario():
        replicas, client = await replicas_and_client(3)
        try:
            await settle(client, {"r0", "r1", "r2"})
            return counts(await served_by(client, 60))
        finally:
            await client.close()
            for r in replicas:
                await r.server.stop(None)

    assert run(scenario()) == {"r0": 20, "r1": 20, "r2": 20}


def test_not_serving_replica_leaves_rotation_and_comes_back() -> None:
    async def scenario():
        replicas, client = await replicas_and_client(2)
        try:
            await settle(client, {"r0", "r1"})
            await replicas[1].set(NOT_SERVING)
            await settle(client, {"r0"})
            while_out = counts(await served_by(client, 40))
            await replicas[1].set(SERVING)
            await settle(client, {"r0", "r1"})
            return while_out, counts(await served_by(client, 40))
        finally:
            await client.close()
            for r in replicas:
                await r.server.stop(None)

    while_out, back = run(scenario())
    assert while_out == {"r0": 40}
    assert back == {"r0": 20, "r1": 20}


def test_dead_replica_leaves_rotation() -> None:
    async def scenario():
        replicas, client = await replicas_and_client(2)
        try:
            await settle(client, {"r0", "r1"})
            await replicas[0].server.stop(None)
            await settle(client, {"r1"})
            return counts(await served_by(client, 30))
        finally:
            await client.close()
            await replicas[1].server.stop(None)

    assert run(scenario()) == {"r1": 30}


def test_health_check_off_keeps_a_not_serving_replica() -> None:
    async def scenario():
        replicas = [Replica("r0"), Replica("r1")]
        for r in replicas:
            await r.start()
        await replicas[1].set(NOT_SERVING)
        target = "ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in replicas)
        client = EdgeClient(target, health_check=False)
        try:
            await settle(client, {"r0", "r1"})
            return counts(await served_by(client, 20))
        finally:
            await client.close()
            for r in replicas:
                await r.server.stop(None)

    assert run(scenario()) == {"r0": 10, "r1": 10}


def test_links_of_a_group_meet_at_one_replica_and_groups_spread() -> None:
    groups = [f"obs-{k}" for k in range(40)]

    async def scenario():
        replicas, client = await replicas_and_client(2)
        try:
            await settle(client, {"r0", "r1"})
            return {g: set(await served_by(client, 4, g)) for g in groups}

        finally:
            await client.close()
            for r in replicas:
                await r.server.stop(None)

    placement = run(scenario())
    assert all(len(where) == 1 for where in placement.values()), placement
    per_replica = counts([next(iter(where)) for where in placement.values()])
    assert set(per_replica) == {"r0", "r1"}
    assert min(per_replica.values()) >= 8  # a hash, not one replica for all


def test_groups_of_a_not_serving_replica_move_and_the_others_stay() -> None:
    groups = [f"obs-{k}" for k in range(30)]

    async def scenario():
        replicas, client = await replicas_and_client(3)
        try:
            await settle(client, {"r0", "r1", "r2"}, groups)
            before = {g: (await served_by(client, 1, g))[0] for g in groups}
            await replicas[2].set(NOT_SERVING)
            await settle(client, {"r0", "r1"}, groups)
            after = {g: set(await served_by(client, 3, g)) for g in groups}
            return before, after
        finally:
            await client.close()
            for r in replicas:
                await r.server.stop(None)

    before, after = run(scenario())
    assert "r2" in before.values()
    for group, where in after.items():
        assert len(where) == 1 and "r2" not in where
        if before[group] != "r2":
            assert where == {before[group]}, group  # only the leaving replica's groups move


def test_service_configs_ask_for_the_policy_and_health_checks() -> None:
    rr = json.loads(service_config("round_robin"))
    assert rr["loadBalancingConfig"] == [{"round_robin": {}}]
    assert rr["healthCheckConfig"] == {"serviceName": "coinference.v1.Edge"}
    ring = json.loads(service_config("ring_hash", health_check=False))
    assert "healthCheckConfig" not in ring
    assert ring["loadBalancingConfig"][0]["ring_hash_experimental"]["requestHashHeader"]
    with pytest.raises(ValueError, match="round_robin"):
        service_config("least_request")


@pytest.mark.parametrize(
    "target",
    ["edge:50052", "dns:///edge_server:50052", "ipv4:127.0.0.1:1,127.0.0.1:2", "[::1]:5"],
)
def test_edge_targets_gRPC_resolves_are_accepted(target: str) -> None:
    assert check_edge_target(target) == target


@pytest.mark.parametrize(
    "target",
    ["edge", "dns:///edge_server", "ipv4:127.0.0.1:1,127.0.0.1", "edge:99999", "", " edge:1"],
)
def test_bad_edge_targets_are_refused_with_the_forms(target: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        check_edge_target(target)


def test_group_ids_must_be_printable_ascii() -> None:
    check_group_id("")
    check_group_id("obs-17 cam/2")
    for bad in ("é", "a\nb", "x" * 257):
        with pytest.raises(ValueError, match="printable ASCII"):
            check_group_id(bad)
