"""gRPC transport of the edge server (``grpc.aio``): a thin servicer over :class:`EdgeDecoder`.

The shared core (:class:`shared.service.grpc_server.GrpcServer`) supplies options, health,
reflection, metrics and the mapping of :class:`~shared.service.errors.ServiceError` to a
gRPC status. The health status follows :attr:`EdgeDecoder.serving`: NOT_SERVING while the
decoder cannot run (failed probe, stopped batch worker), SERVING again once it runs.
"""

from __future__ import annotations

import logging
import sys

from edge_server.metrics import EdgeMetrics
from edge_server.service import EdgeDecoder
from edge_server.settings import EdgeSettings, parse_settings
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.grpc_server import GrpcServer, ServiceServicer, serve_until_signal
from shared.service.loop import loop_name
from shared.service.startup import service_main

log = logging.getLogger("edge_server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Edge"].full_name
# The settings EdgeDecoder takes as they are, under the same names.
DECODER_SETTINGS = {"max_batch_size", "max_queue_delay_us", "decoder_snr", "probe_interval_s",
                    "group_timeout_s", "inline_decode_max"}  # fmt: skip


class EdgeServicer(ServiceServicer, pb_grpc.EdgeServicer):
    """The Edge service over an :class:`EdgeDecoder`."""

    service: EdgeDecoder
    Decode = ServiceServicer.with_deadline("decode")
    DecodeBatch = ServiceServicer.with_deadline("decode_batch")

    async def GetInfo(self, request, context):
        return self.service.info()


def load_edge(settings: EdgeSettings) -> EdgeDecoder:
    """Load the decoder (torch, imported here) and wrap it in an :class:`EdgeDecoder`."""
    import torch

    from edge_server.decoder import DecoderRuntime
    from shared.nn.zoo import import_families

    # a batch of 4 took 21 ms with 2 threads on 2 busy cores, 0.13 ms with 1 (docs/SERVING.md)
    torch.set_num_threads(settings.torch_threads)
    import_families(settings.model_modules())
    decoder = DecoderRuntime(settings.model, device=settings.device, trace=settings.decoder_trace)
    return EdgeDecoder(
        decoder,
        decoder.manifest,
        device=decoder.device,
        metrics=EdgeMetrics(),
        replica_id=settings.replica_name(),
        **settings.model_dump(include=DECODER_SETTINGS),
    )


def build_server(settings: EdgeSettings, edge: EdgeDecoder) -> GrpcServer:
    """Create (not start) the aio server; its health follows ``edge.serving``."""
    server = GrpcServer.from_settings(
        settings,
        SERVICE_NAME,
        pb_grpc.add_EdgeServicer_to_server,
        EdgeServicer(edge),
        edge.metrics,
        options=settings.server_options(),
    )
    edge.on_health = server.set_serving
    return server


async def serve_async(settings: EdgeSettings, edge: EdgeDecoder) -> int:
    """Export the metrics, then serve ``edge`` until SIGTERM/SIGINT."""
    edge.metrics.serve(settings.metrics_port)
    server = build_server(settings, edge)
    await server.start(serving=False)
    if not await edge.start():  # warm-up: health turns SERVING once the decoder has run
        log.error("decoder cannot run: NOT_SERVING, probing every %g s", settings.probe_interval_s)
    m = edge.manifest
    log.info(
        "edge %s serving model %s (%s, d=%d) on %s:%d (%s) [%s, max batch %d, queue delay %g us, "
        "%s loop, decoder %s]",
        *(edge.replica_id, m.model_id, m.task, m.d, settings.host, settings.port),
        *("TLS" if server.tls else "plaintext", edge.device),
        *(settings.max_batch_size, settings.max_queue_delay_us, loop_name()),
        "traced" if getattr(edge.decoder, "traced", False) else "eager",
    )
    return await serve_until_signal(server, settings.grace_s, "edge", on_stopped=edge.close)


def main(argv: list[str] | None = None) -> int:
    return service_main(argv, parse_settings, log, serve_async, load_edge, "cannot load model")


if __name__ == "__main__":
    sys.exit(main())
