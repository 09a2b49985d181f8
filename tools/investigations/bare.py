"""Bare stand-ins for the channel or the edge (torch-free), to see what each service adds:

    python -m tools.investigations.bare edge --port P --model DIR   # a canned reply, no decoder
    python -m tools.investigations.bare channel --port P --edge HOST:PORT   # raw bytes, no noise

Plain ``grpc.aio`` servers with the standard health service and nothing else: the edge
answers ``Decode`` with a fixed ten-class reply and ``GetInfo`` from the manifest; the
channel forwards ``Transmit`` and ``GetEdgeInfo`` as raw bytes, unparsed, and answers
``GetState`` with 20 dB. Used by :mod:`tools.investigations.ab`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from shared.manifest import load_manifest
from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc

EDGE = pb.DESCRIPTOR.services_by_name["Edge"].full_name
CHANNEL = pb.DESCRIPTOR.services_by_name["Channel"].full_name


class BareEdge(pb_grpc.EdgeServicer):
    def __init__(self, model_dir: str) -> None:
        m = load_manifest(model_dir)
        self.info_reply = pb.EdgeInfo(
            model_id=m.model_id, task=m.task, d=m.d, serving=True,
            bits_per_symbol=int(m.bits or 0), beta_min=m.beta_range[0],
            beta_max=m.beta_range[1], snr_db_min=m.snr_db_range[0],
            snr_db_max=m.snr_db_range[1], class_names=m.class_names,
        )  # fmt: skip
        self.classes = len(m.class_names) or 10

    async def Decode(self, request, context):
        return pb.InferenceReply(request_id=request.request_id, model_id=request.model_id,
                                 probabilities=[1 / self.classes] * self.classes)  # fmt: skip

    async def GetInfo(self, request, context):
        return self.info_reply


def bare_channel_handler(edge: grpc.aio.Channel) -> grpc.GenericRpcHandler:
    decode = edge.unary_unary(f"/{EDGE}/Decode")  # raw bytes both ways
    info = edge.unary_unary(f"/{EDGE}/GetInfo")
    state = pb.ChannelState(psnr_db=20.0, noise_var=0.01).SerializeToString()

    async def transmit(request: bytes, context) -> bytes:
        return await decode(request, timeout=context.time_remaining())

    async def edge_info(request: bytes, context) -> bytes:
        return await info(request, timeout=context.time_remaining())

    async def get_state(request: bytes, context) -> bytes:
        return state

    methods = {"Transmit": transmit, "GetEdgeInfo": edge_info, "GetState": get_state}
    return grpc.method_handlers_generic_handler(
        CHANNEL, {name: grpc.unary_unary_rpc_method_handler(f) for name, f in methods.items()}
    )


async def serve(args: argparse.Namespace) -> None:
    server = grpc.aio.server()
    status = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(status, server)
    if args.kind == "edge":
        pb_grpc.add_EdgeServicer_to_server(BareEdge(args.model), server)
        name = EDGE
    else:
        server.add_generic_rpc_handlers(
            (bare_channel_handler(grpc.aio.insecure_channel(args.edge)),)
        )
        name = CHANNEL
    for service in ("", name):
        await status.set(service, health_pb2.HealthCheckResponse.SERVING)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    await server.wait_for_termination()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.investigations.bare", description=__doc__
    )
    parser.add_argument("kind", choices=("edge", "channel"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", help="model folder (edge)")
    parser.add_argument("--edge", help="HOST:PORT of the edge (channel)")
    parser.add_argument("--psnr", help="ignored (the stack passes it)")
    args, _ = parser.parse_known_args(argv)  # the stack's other flags do not apply
    if (args.kind == "edge") != bool(args.model) or (args.kind == "channel") != bool(args.edge):
        parser.error("edge needs --model, channel needs --edge")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
