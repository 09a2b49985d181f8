"""gRPC transport of the edge server: a thin servicer over :class:`EdgeDecoder`."""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from edge_server.config import EdgeSettings, parse_settings
from edge_server.metrics import EdgeMetrics
from edge_server.service import EdgeDecoder, EdgeError
from shared.manifest import ManifestError
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Edge"].full_name


class EdgeServicer(pb_grpc.EdgeServicer):
    def __init__(self, edge: EdgeDecoder) -> None:
        self.edge = edge

    def Decode(self, request, context):
        try:
            return self.edge.decode(request, context.time_remaining())
        except EdgeError as exc:
            context.abort(exc.code, exc.message)

    def GetInfo(self, request, context):
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
        workers=settings.batch_workers,
        decoder_snr=settings.decoder_snr,
        device=decoder.device,
        metrics=EdgeMetrics(),
    )


def build_server(settings: EdgeSettings, edge: EdgeDecoder):
    """Create (not start) the server; returns (server, health servicer)."""
    options = [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.workers), options=options)
    pb_grpc.add_EdgeServicer_to_server(EdgeServicer(edge), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    server.add_insecure_port(f"{settings.host}:{settings.port}")
    return server, health_servicer


def serve(settings: EdgeSettings) -> int:
    print(settings, flush=True)
    try:
        edge = load_edge(settings)
    except (ManifestError, ValueError) as exc:
        print(f"edge_server: cannot load model: {exc}", file=sys.stderr, flush=True)
        return 2
    edge.warm_up()
    server, health_servicer = build_server(settings, edge)
    edge.metrics.serve(settings.metrics_port)
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    m = edge.manifest
    print(
        f"edge serving model {m.model_id} ({m.task}, d={m.d}) on {settings.host}:{settings.port}"
        f" [{edge.device}, max batch {settings.max_batch_size}]",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("edge shutting down", flush=True)
    health_servicer.enter_graceful_shutdown()
    server.stop(settings.grace_s).wait()
    edge.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return serve(parse_settings(argv))


if __name__ == "__main__":
    sys.exit(main())
