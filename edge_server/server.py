"""gRPC transport of the edge server (``grpc.aio``): a thin servicer over :class:`EdgeDecoder`.

The gRPC health status follows :attr:`EdgeDecoder.serving`: NOT_SERVING while the decoder
cannot run (failed probe, stopped batch worker), SERVING again once it runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from edge_server.config import EdgeSettings, parse_settings
from edge_server.metrics import EdgeMetrics
from edge_server.service import EdgeDecoder, EdgeError
from shared.manifest import ManifestError
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc

log = logging.getLogger("edge_server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Edge"].full_name


class EdgeServicer(pb_grpc.EdgeServicer):
    def __init__(self, edge: EdgeDecoder) -> None:
        self.edge = edge

    async def Decode(self, request, context):
        try:
            return await self.edge.decode(request, context.time_remaining())
        except EdgeError as exc:
            await context.abort(exc.code, exc.message)

    async def GetInfo(self, request, context):
        return self.edge.info()


def load_edge(settings: EdgeSettings) -> EdgeDecoder:
    """Load the decoder (torch, imported here) and wrap it in an :class:`EdgeDecoder`."""
    from shared.nn.runtime import load_decoder

    decoder = load_decoder(settings.model, device=settings.device)
    return EdgeDecoder(
        decoder,
        decoder.manifest,
        max_batch_size=settings.max_batch_size,
        max_queue_delay_us=settings.max_queue_delay_us,
        decoder_snr=settings.decoder_snr,
        device=decoder.device,
        metrics=EdgeMetrics(),
        probe_interval_s=settings.probe_interval_s,
    )


def build_server(settings: EdgeSettings, edge: EdgeDecoder):
    """Create (not start) the aio server; returns (server, health servicer).

    Health starts NOT_SERVING and follows ``edge.serving`` from then on.
    """
    options = [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
    ]
    server = grpc.aio.server(options=options)
    pb_grpc.add_EdgeServicer_to_server(EdgeServicer(edge), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    async def set_health(serving: bool) -> None:
        status = health_pb2.HealthCheckResponse
        status = status.SERVING if serving else status.NOT_SERVING
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, status)

    edge.on_health = set_health
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    server.add_insecure_port(f"{settings.host}:{settings.port}")
    return server, health_servicer


async def serve_async(settings: EdgeSettings, edge: EdgeDecoder) -> int:
    server, health_servicer = build_server(settings, edge)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    if not await edge.start():  # warm-up: health turns SERVING once the decoder has run
        log.error("decoder cannot run: NOT_SERVING, probing every %g s", settings.probe_interval_s)
    m = edge.manifest
    log.info(
        "edge serving model %s (%s, d=%d) on %s:%d [%s, max batch %d, queue delay %g us]",
        *(m.model_id, m.task, m.d, settings.host, settings.port, edge.device),
        *(settings.max_batch_size, settings.max_queue_delay_us),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("edge shutting down (grace %g s)", settings.grace_s)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.grace_s)
    await edge.close()
    return 0


def serve(settings: EdgeSettings) -> int:
    log.info("%s", settings)
    try:
        edge = load_edge(settings)
    except (ManifestError, ValueError) as exc:
        log.error("cannot load model: %s", exc)
        return 2
    edge.metrics.serve(settings.metrics_port)
    return asyncio.run(serve_async(settings, edge))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return serve(parse_settings(argv))


if __name__ == "__main__":
    sys.exit(main())
