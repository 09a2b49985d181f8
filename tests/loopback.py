"""gRPC servers in the test process on a free loopback port, stopped on the way out.

async with bare_grpc_server("Channel", servicer) as target:   # plain grpc.aio server
async with service_grpc_server("Edge", servicer, metrics) as target:   # the services' own
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.grpc_server import GrpcServer
from shared.service.metrics import ServiceMetrics
from tests.procs import free_port

HOST = "127.0.0.1"


def _registrar(service: str, servicer):
    """add_<service>Servicer_to_server bound to ``servicer`` (service: "Edge", "Channel")."""
    add = getattr(pb_grpc, f"add_{service}Servicer_to_server")
    return lambda server: add(servicer, server)


@asynccontextmanager
async def bare_grpc_server(service: str, servicer) -> AsyncIterator[str]:
    """``servicer`` as the gRPC service ``service`` on a bare grpc.aio server; yields its
    target ("127.0.0.1:PORT")."""
    server = grpc.aio.server()
    _registrar(service, servicer)(server)
    port = server.add_insecure_port(f"{HOST}:0")
    await server.start()
    try:
        yield f"{HOST}:{port}"
    finally:
        await server.stop(None)


@asynccontextmanager
async def service_grpc_server(
    service: str, servicer, metrics: ServiceMetrics, **server_args
) -> AsyncIterator[str]:
    """``servicer`` as the gRPC service ``service`` through the services' own GrpcServer (error
    mapping, metrics, health, reflection; credentials, admin token and server options in
    ``server_args``), serving; yields its target ("127.0.0.1:PORT")."""
    port = free_port()
    full_name = pb.DESCRIPTOR.services_by_name[service].full_name
    server = GrpcServer(
        (full_name,), _registrar(service, servicer), metrics, HOST, port, **server_args
    )
    await server.start(serving=True)
    try:
        yield f"{HOST}:{port}"
    finally:
        await server.stop(0)
