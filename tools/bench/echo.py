"""One hop of the bench's bare gRPC echo chain (torch-free):

    python -m tools.bench.echo --port 50070 --reply-bytes 120         # last hop: answers
    python -m tools.bench.echo --port 50071 --next 127.0.0.1:50070    # forwards

Generic raw-bytes handlers on a thread-pool ``grpc.server`` (:func:`serve_raw`, which the
edge-only reference serves with too), the same two hops as device -> channel -> edge with
none of their work.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from concurrent import futures

import grpc

ECHO_SERVICE, ECHO_METHOD = "bench.Echo", "/bench.Echo/Call"
# the edge-only reference's method (scripts/edge_only.py serves it with serve_raw)
EDGE_ONLY_SERVICE, EDGE_ONLY_METHOD = "bench.EdgeOnly", "/bench.EdgeOnly/Classify"

Handler = Callable[[bytes, grpc.ServicerContext], bytes]


def serve_raw(service: str, method: str, handle: Handler, port: int, workers: int,
              banner: str) -> None:  # fmt: skip
    """Serve ``/<service>/<method>`` on 127.0.0.1:``port`` until the process ends: raw bytes
    both ways (no proto), ``handle(request, context) -> reply`` on a pool of ``workers``
    threads; ``banner`` is printed once the server listens."""
    handler = grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(handle)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(banner, flush=True)
    server.wait_for_termination()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.echo", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--next", default=None, help="HOST:PORT of the next hop; none = answer")
    parser.add_argument("--reply-bytes", type=int, default=0, help="answer size (last hop)")
    parser.add_argument("--workers", type=int, default=64)
    args = parser.parse_args(argv)
    if args.next:
        channel = grpc.insecure_channel(args.next)
        forward = channel.unary_unary(ECHO_METHOD)

        def handle(request: bytes, _context) -> bytes:
            return forward(request, timeout=5.0)
    else:
        answer = bytes(args.reply_bytes)

        def handle(request: bytes, _context) -> bytes:
            return answer if args.reply_bytes else request

    banner = f"echo hop on :{args.port} -> {args.next or 'answer'}"
    serve_raw(ECHO_SERVICE, "Call", handle, args.port, args.workers, banner)
    return 0


if __name__ == "__main__":
    sys.exit(main())
