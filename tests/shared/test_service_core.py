"""The service core without the real services: the aio server helper maps ServiceError to
its status, answers a bug with INTERNAL and no stack trace, counts calls under the shared
metric names, and keeps health and reflection; settings refuse bad values with exit 2."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import generate_latest

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.deadlines import forward_timeout
from shared.service.errors import ServiceError
from shared.service.grpc_server import GrpcServer
from shared.service.metrics import ServiceMetrics
from shared.service.settings import GrpcServiceSettings, StrictBool, parse_settings
from tests.loopback import service_grpc_server
from tests.procs import free_port

EDGE = pb.DESCRIPTOR.services_by_name["Edge"].full_name


class Edge(pb_grpc.EdgeServicer):
    async def Decode(self, request, context):
        if request.model_id == "other":
            raise ServiceError(grpc.StatusCode.FAILED_PRECONDITION, "model id mismatch")
        if request.model_id == "bug":
            raise KeyError("secret internals")
        return pb.InferenceReply(request_id=request.request_id)

    async def GetInfo(self, request, context):
        return pb.EdgeInfo(model_id="m")


async def _exercise(metrics: ServiceMetrics) -> dict:
    outcomes = {}
    async with (
        service_grpc_server("Edge", Edge(), metrics) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        stub = pb_grpc.EdgeStub(channel)
        outcomes["ok"] = (await stub.Decode(pb.Transmission(request_id="r"), timeout=2)).request_id
        for model_id in ("other", "bug"):
            try:
                await stub.Decode(pb.Transmission(model_id=model_id), timeout=2)
            except grpc.aio.AioRpcError as exc:
                outcomes[model_id] = (exc.code(), exc.details())
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=EDGE), timeout=2)
        outcomes["health"] = reply.status
    return outcomes


def test_server_maps_errors_and_counts_calls() -> None:
    metrics = ServiceMetrics("edge")
    outcomes = asyncio.run(_exercise(metrics))
    assert outcomes["ok"] == "r"
    assert outcomes["other"] == (grpc.StatusCode.FAILED_PRECONDITION, "model id mismatch")
    code, details = outcomes["bug"]
    assert code == grpc.StatusCode.INTERNAL and details == "internal error: KeyError"
    assert outcomes["health"] == health_pb2.HealthCheckResponse.SERVING
    assert metrics.requests_with("Decode", "OK") == 1
    assert metrics.requests_with("Decode", "FAILED_PRECONDITION") == 1
    assert metrics.requests_with("Decode", "INTERNAL") == 1
    text = generate_latest(metrics.registry).decode()
    assert 'coinference_requests_total{code="OK",method="Decode",service="edge"} 1.0' in text
    assert 'coinference_request_seconds_bucket{le="0.0001",method="Decode"' in text
    assert "Check" not in text  # health probes are not the service's calls


def test_forward_timeout_is_the_smaller_budget() -> None:
    assert forward_timeout(2.0, None) == 2.0
    assert forward_timeout(2.0, 0.5) == 0.5
    assert forward_timeout(2.0, -1.0) == 0.001


class Toy(GrpcServiceSettings):
    flag_on: StrictBool = False


@pytest.mark.parametrize("word", ["yes", "2", "maybe"])
def test_strict_booleans_are_usage_errors(word, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        parse_settings(Toy, ["--flag-on", word], env={})
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--flag-on / FLAG_ON" in err and len(err.splitlines()) == 1


def test_flag_alone_is_true_and_flag_beats_environment() -> None:
    assert parse_settings(Toy, ["--flag-on"], env={}).flag_on is True
    settings = parse_settings(Toy, ["--port", "7"], env={"PORT": "9", "FLAG_ON": "off"})
    assert settings.port == 7 and settings.flag_on is False


def test_methods_are_wrapped_once_at_registration_and_reflection_still_lists_them() -> None:
    """The wrapper is applied when the servicer registers (no per-call interceptor): the
    handlers gRPC holds are the wrapped ones, and reflection still names the service."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async def run() -> tuple[list[str], float]:
        metrics = ServiceMetrics("edge")
        async with (
            service_grpc_server("Edge", Edge(), metrics) as target,
            grpc.aio.insecure_channel(target) as channel,
        ):
            await pb_grpc.EdgeStub(channel).GetInfo(pb.GetInfoRequest(), timeout=2)
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            names = []
            async for reply in stub.ServerReflectionInfo(iter([request]), timeout=2):
                names = [s.name for s in reply.list_services_response.service]
        return names, metrics.requests_with("GetInfo", "OK")

    names, counted = asyncio.run(run())
    assert EDGE in names and counted == 1


def test_a_service_registering_only_a_generic_handler_is_refused() -> None:
    """Its methods would run without metrics and error mapping: refused at start-up. Another
    service's generic handler passes through unwrapped."""

    def generic_only(server) -> None:
        handler = grpc.method_handlers_generic_handler(
            EDGE, {"GetInfo": grpc.unary_unary_rpc_method_handler(lambda r, c: pb.EdgeInfo())}
        )
        server.add_generic_rpc_handlers((handler,))

    async def build(add) -> None:
        GrpcServer((EDGE,), add, ServiceMetrics("edge"), "127.0.0.1", free_port())

    with pytest.raises(ValueError, match="generic handler only"):
        asyncio.run(build(generic_only))

    def other_service(server) -> None:
        handler = grpc.method_handlers_generic_handler(
            "other.Service", {"Ping": grpc.unary_unary_rpc_method_handler(lambda r, c: r)}
        )
        server.add_generic_rpc_handlers((handler,))

    asyncio.run(build(other_service))


def test_later_records_at_once_outside_a_loop_and_after_the_current_step_inside_one() -> None:
    seen: list[int] = []
    ServiceMetrics.later(seen.append, 1)
    assert seen == [1]

    async def reply_then_record() -> list[int]:
        ServiceMetrics.later(seen.append, 2)
        before = list(seen)  # the reply is built and returned before the bookkeeping runs
        await asyncio.sleep(0)
        return before

    assert asyncio.run(reply_then_record()) == [1]
    assert seen == [1, 2]
