"""gRPC transport of the channel proxy (``grpc.aio``): a thin servicer over
:class:`ChannelService`, which forwards to the edge with an aio client.

The shared core (:class:`shared.service.grpc_server.GrpcServer`) supplies options, health,
reflection, metrics and the mapping of :class:`~shared.service.errors.ServiceError` to a
gRPC status. Deadlines propagate: the edge call gets min(``--deadline-s``, the caller's
remaining time), and a caller that gives up cancels its own edge call only.
"""

from __future__ import annotations

import logging
import sys

from channel.edge_client import EdgeClient
from channel.messages import fading_from_message
from channel.metrics import ChannelMetrics
from channel.profiles import FixedProfile, RandomWalkProfile, TracePoint, TraceProfile
from channel.service import ChannelService
from channel.settings import ChannelSettings, parse_settings
from channel.streams import DEFAULT_STREAM_IN_FLIGHT, TransmitStream
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.errors import invalid_argument
from shared.service.grpc_server import GrpcServer, ServiceServicer, grpc_options, serve_until_signal
from shared.service.loop import loop_name
from shared.service.startup import service_main

log = logging.getLogger("channel")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Channel"].full_name
# The calls that change the channel's state: they need the admin token when one is set.
ADMIN_METHODS = ("SetPsnr", "SetProfile", "SetLinkMode", "SetFading")
# The settings ChannelService takes as they are, under the same names.
SERVICE_SETTINGS = {"pilots", "baud", "deadline_s", "emulate_airtime", "seed", "link_mode",
                    "edge_batching", "edge_batch"}  # fmt: skip


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


class ChannelServicer(ServiceServicer, pb_grpc.ChannelServicer):
    """The Channel service over a :class:`ChannelService`; ``stream_in_flight`` items of one
    TransmitStream at most are in flight (channel/streams.py)."""

    service: ChannelService
    Transmit = ServiceServicer.with_deadline("transmit")
    TransmitBatch = ServiceServicer.with_deadline("transmit_batch")

    def __init__(self, service: ChannelService, stream_in_flight: int = DEFAULT_STREAM_IN_FLIGHT):
        super().__init__(service)
        self.stream_in_flight = stream_in_flight

    async def TransmitStream(self, request_iterator, context):
        await TransmitStream(self.service, context, self.stream_in_flight).serve(request_iterator)

    async def SetPsnr(self, request, context):
        link = request.link if request.HasField("link") else None
        return self.service.set_psnr(request.psnr_db, link)

    async def SetProfile(self, request, context):
        try:
            profile = profile_from_request(request)
        except ValueError as exc:
            raise invalid_argument(str(exc)) from None
        return self.service.set_profile(profile, request.link if request.HasField("link") else None)

    async def GetState(self, request, context):
        return self.service.state()

    async def GetEdgeInfo(self, request, context):
        return await self.service.edge_info(context.time_remaining())

    async def SetLinkMode(self, request, context):
        return self.service.set_link_mode(request.mode)

    async def SetFading(self, request, context):
        try:
            fading = fading_from_message(request.fading)
        except ValueError as exc:
            raise invalid_argument(f"SetFading: {exc}") from None
        return self.service.set_fading(fading)


def build_service(settings: ChannelSettings) -> tuple[ChannelService, EdgeClient]:
    """The channel's work over the edge replicas' client (inside the event loop)."""
    edge = EdgeClient(
        settings.edge,
        settings.edge_credentials(),
        options=grpc_options(settings.max_message_bytes),
        health_check=settings.edge_health_check,
    )
    service = ChannelService(
        edge.decode,
        profile=settings.build_profile(),
        edge_target=settings.edge,
        metrics=ChannelMetrics(),
        edge_info_call=edge.info,
        edge_batch_call=edge.decode_batch,
        fading=settings.build_fading(),
        edge_in_flight=settings.edge_calls_in_flight(),
        edge_batch_delay_s=settings.edge_batch_delay_ms / 1e3,
        **settings.model_dump(include=SERVICE_SETTINGS),
    )
    return service, edge


def build_server(settings: ChannelSettings, service: ChannelService) -> GrpcServer:
    """Create (not start) the aio server over ``service``."""
    return GrpcServer.from_settings(
        settings,
        SERVICE_NAME,
        pb_grpc.add_ChannelServicer_to_server,
        ChannelServicer(service, settings.stream_in_flight),
        service.metrics,
        admin_methods=ADMIN_METHODS,
        admin_token=settings.admin_token_value(),
    )


async def serve_async(settings: ChannelSettings, _loaded: None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    service, edge = build_service(settings)
    service.metrics.serve(settings.metrics_port)
    server = build_server(settings, service)
    await server.start(serving=True)
    log.info(
        "channel listening on %s:%d (%s, admin token %s), forwarding to %s (%s), %s; "
        "edge replicas: round_robin, groups by ring_hash, health-checked: %s; %s; %s loop",
        *(settings.host, settings.port, "TLS" if server.tls else "plaintext"),
        "set" if settings.admin_token_value() else "off",
        *(settings.edge, "TLS" if settings.edge_credentials() else "plaintext"),
        service.state().profile,
        settings.edge_health_check,
        f"edge batching on (at most {settings.edge_batch} per call, "
        f"{settings.edge_calls_in_flight()} "
        f"calls out, delay {settings.edge_batch_delay_ms:g} ms)"
        if settings.edge_batching
        else "edge batching off",
        loop_name(),
    )

    async def close_edge() -> None:
        await service.edge.close()
        await edge.close()

    return await serve_until_signal(server, settings.grace_s, "channel", close_edge)


def main(argv: list[str] | None = None) -> int:
    return service_main(argv, parse_settings, log, serve_async)


if __name__ == "__main__":
    sys.exit(main())
