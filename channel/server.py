"""gRPC transport of the channel proxy: a thin servicer over :class:`ChannelService`."""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from channel.config import ChannelSettings, parse_settings
from channel.metrics import ChannelMetrics
from channel.profiles import FixedProfile, RandomWalkProfile, TracePoint, TraceProfile
from channel.service import ChannelError, ChannelService
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Channel"].full_name


def grpc_options(max_message_bytes: int) -> list[tuple[str, int | str]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


def profile_from_request(request: pb.SetProfileRequest):
    """Build a PSNR profile from a SetProfile request; ValueError with a clear message."""
    kind = request.WhichOneof("profile")
    if kind == "fixed":
        return FixedProfile(request.fixed.psnr_db)
    if kind == "random_walk":
        walk = request.random_walk
        return RandomWalkProfile(
            walk.low_db,
            walk.high_db,
            walk.step_db,
            walk.period_s,
            seed=walk.seed if walk.HasField("seed") else None,
        )
    if kind == "trace":
        points = [TracePoint(p.time_s, p.psnr_db) for p in request.trace.points]
        return TraceProfile(points, loop=request.trace.loop, source="SetProfile trace")
    raise ValueError("SetProfile needs one of: fixed, random_walk, trace")


class ChannelServicer(pb_grpc.ChannelServicer):
    def __init__(self, service: ChannelService) -> None:
        self.service = service

    def Transmit(self, request, context):
        try:
            return self.service.transmit(request, context.time_remaining())
        except ChannelError as exc:
            context.abort(exc.code, exc.message)

    def SetPsnr(self, request, context):
        try:
            return self.service.set_psnr(request.psnr_db)
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def SetProfile(self, request, context):
        try:
            return self.service.set_profile(profile_from_request(request))
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def GetState(self, request, context):
        return self.service.state()

    def GetEdgeInfo(self, request, context):
        try:
            return self.service.edge_info(context.time_remaining())
        except ChannelError as exc:
            context.abort(exc.code, exc.message)


def build_server(settings: ChannelSettings):
    """Create (not start) the server; returns (server, service, health servicer, edge channel)."""
    options = grpc_options(settings.max_message_bytes)
    edge_channel = grpc.insecure_channel(
        settings.edge, options=[*options, ("grpc.lb_policy_name", "round_robin")]
    )
    edge_stub = pb_grpc.EdgeStub(edge_channel)

    def edge_call(transmission: pb.Transmission, timeout_s: float) -> pb.InferenceReply:
        return edge_stub.Decode(transmission, timeout=timeout_s)

    def edge_info_call(timeout_s: float) -> pb.EdgeInfo:
        return edge_stub.GetInfo(pb.GetInfoRequest(), timeout=timeout_s)

    metrics = ChannelMetrics()
    service = ChannelService(
        edge_call,
        profile=settings.build_profile(),
        pilots=settings.pilots,
        baud=settings.baud,
        deadline_s=settings.deadline_s,
        emulate_airtime=settings.emulate_airtime,
        seed=settings.seed,
        edge_target=settings.edge,
        metrics=metrics,
        edge_info_call=edge_info_call,
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.workers), options=options)
    pb_grpc.add_ChannelServicer_to_server(ChannelServicer(service), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    server.add_insecure_port(f"{settings.host}:{settings.port}")
    return server, service, health_servicer, edge_channel


def serve(settings: ChannelSettings) -> None:
    print(settings, flush=True)
    server, service, health_servicer, edge_channel = build_server(settings)
    service.metrics.serve(settings.metrics_port)
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    print(
        f"channel listening on {settings.host}:{settings.port}, forwarding to {settings.edge}, "
        f"{service.state().profile}",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("channel shutting down", flush=True)
    health_servicer.enter_graceful_shutdown()
    server.stop(settings.grace_s).wait()
    edge_channel.close()


def main(argv: list[str] | None = None) -> int:
    serve(parse_settings(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
