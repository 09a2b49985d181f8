"""Which gRPC server serves the channel's unary ``Transmit`` with the least CPU per call?

    python -m tools.devices.server_kinds --seconds 8 --concurrency 64 --rounds 3

Each kind runs in its own process with the same handler: parse a ``Transmission`` the size
the many-devices load sends (64 symbols), answer an ``InferenceReply`` with timings and CSI.
A closed-loop ``grpc.aio`` client in this process keeps ``--concurrency`` calls out over 4
connections; the server's CPU time (/proc) over the answered calls is its CPU per call.
Kinds, all in one run (ratios hold on a shared machine): ``aio-uvloop`` (what the services
run), ``aio-asyncio``, ``aio-uvloop-light`` (aio with the lighter options tried: no
HTTP/2 BDP probing, optimization target "throughput"), ``sync-threads`` (the
thread-pool ``grpc.server``; unary handlers in threads) and ``sync-threads-loop`` (the same,
each call handed to an asyncio event loop in another thread and waited for: how a
thread-pool server would reach the channel's async batching toward the edge).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc

from shared.provenance import code_version
from shared.rpc import coinference_pb2 as pb
from tools.stack import REPO, free_port

KINDS = (
    "aio-uvloop",
    "aio-asyncio",
    "aio-uvloop-light",
    "sync-threads",
    "sync-threads-loop",
    "aio-uvloop-stream",
)
METHOD = "/coinference.v1.Channel/Transmit"
STREAM_METHOD = "/coinference.v1.Channel/TransmitStream"
LIGHT_OPTIONS = [("grpc.http2.bdp_probe", 0), ("grpc.optimization_target", "throughput")]


def handle(request: pb.Transmission, context) -> pb.InferenceReply:
    """What the channel's wrapper and reply cost, without noise and forwarding."""
    reply = pb.InferenceReply(request_id=request.request_id, label=len(request.symbols) % 10)
    reply.timings.channel_s = 1e-4
    reply.csi.psnr_db = request.link_psnr_db
    return reply


async def handle_async(request: pb.Transmission, context) -> pb.InferenceReply:
    return handle(request, context)


async def handle_stream(requests, context):
    """``TransmitStream``'s shape: one ``BatchItemReply`` per ``Transmission`` read."""
    async for request in requests:
        yield pb.BatchItemReply(request_id=request.request_id, reply=handle(request, context))


def handed_to_loop():
    """A sync handler that hands each call to a uvloop event loop in another thread and waits
    for it (how a thread-pool server would reach the channel's async batching)."""
    import threading

    import uvloop

    loop = uvloop.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def behaviour(request, context):
        return asyncio.run_coroutine_threadsafe(handle_async(request, context), loop).result()

    return behaviour


def handlers(behaviour):
    rpc = grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=pb.Transmission.FromString,
        response_serializer=pb.InferenceReply.SerializeToString,
    )
    stream = grpc.stream_stream_rpc_method_handler(
        handle_stream,
        request_deserializer=pb.Transmission.FromString,
        response_serializer=pb.BatchItemReply.SerializeToString,
    )
    methods = {"Transmit": rpc, "TransmitStream": stream}
    return (grpc.method_handlers_generic_handler("coinference.v1.Channel", methods),)


def serve(kind: str, port: int) -> None:
    """Run a server of ``kind`` on ``port`` until killed (the child process)."""
    kind = kind.removesuffix("-stream")  # the same server; the client opens streams
    if kind.startswith("sync-threads"):
        behaviour = handle if kind == "sync-threads" else handed_to_loop()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        server.add_generic_rpc_handlers(handlers(behaviour))
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        server.wait_for_termination()
        return

    async def main() -> None:
        options = LIGHT_OPTIONS if kind.endswith("-light") else []
        server = grpc.aio.server(options=options)
        server.add_generic_rpc_handlers(handlers(handle_async))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    if "uvloop" in kind:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(
    port: int, seconds: float, concurrency: int, rate: float = 0.0, streams: int = 0
) -> int:
    """Closed loop: ``concurrency`` calls always out for ``seconds`` (or, with ``rate``,
    Poisson arrivals at ``rate`` calls/s, over ``streams`` long-lived streams when that is
    not 0); the calls (stream messages) answered."""
    raw = pb.Transmission(request_id="r", model_id="m", beta=1e-3, snr_db=10.0, d=64,
                          symbols=[0.25] * 64, link_psnr_db=12.5).SerializeToString()  # fmt: skip
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}",
                                          options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(4)]  # fmt: skip
    calls = itertools.cycle([ch.unary_unary(METHOD, request_serializer=None,
                                            response_deserializer=pb.InferenceReply.FromString)
                             for ch in channels])  # fmt: skip
    for channel in channels:
        await channel.channel_ready()
    answered = 0
    end = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal answered
        while time.perf_counter() < end:
            await next(calls)(raw, timeout=5.0)
            answered += 1

    async def one() -> None:
        nonlocal answered
        await next(calls)(raw, timeout=5.0)
        answered += 1

    if streams:
        return await load_streams(channels, raw, seconds, rate or 1000.0, streams)

    if rate:  # open loop: Poisson arrivals at ``rate`` calls/s, each its own call
        pending = set()
        async for _ in poisson_arrivals(rate, seconds):
            task = asyncio.ensure_future(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    else:
        await asyncio.gather(*(loop() for _ in range(concurrency)))
    for channel in channels:
        await channel.close()
    return answered


async def poisson_arrivals(rate: float, seconds: float, seed: int = 0):
    """Wake at each arrival of a Poisson process of ``rate`` per second for ``seconds`` (the
    open-loop schedule of both the unary and the stream loads)."""
    rng = random.Random(seed)
    due = time.perf_counter()
    end = due + seconds
    while due < end:
        due += rng.expovariate(rate)
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        yield due


async def load_streams(channels, raw: bytes, seconds: float, rate: float, n: int) -> int:
    """Open loop over ``n`` streams: each Poisson arrival goes on a random stream (one writer
    per stream, as grpc.aio allows one write in flight per call); the replies read."""
    answered = 0
    rng = random.Random(1)  # which stream each arrival takes
    opener = itertools.cycle(channels)
    calls = [next(opener).stream_stream(STREAM_METHOD, request_serializer=None,
                                        response_deserializer=pb.BatchItemReply.FromString)()
             for _ in range(n)]  # fmt: skip
    queues = [asyncio.Queue() for _ in range(n)]

    async def write(call, queue) -> None:
        while (message := await queue.get()) is not None:
            await call.write(message)
        await call.done_writing()

    async def read(call) -> None:
        nonlocal answered
        while await call.read() is not grpc.aio.EOF:
            answered += 1

    tasks = [asyncio.ensure_future(f(c, q) if f is write else f(c))
             for c, q in zip(calls, queues, strict=True) for f in (write, read)]  # fmt: skip
    async for _ in poisson_arrivals(rate, seconds):
        queues[rng.randrange(n)].put_nowait(raw)
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.wait_for(asyncio.gather(*tasks), 30.0)
    for channel in channels:
        await channel.close()
    return answered


def measure(
    kind: str, seconds: float, concurrency: int, rate: float = 0.0, streams: int = 1000
) -> dict:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-m", "tools.devices.server_kinds", "--serve",
                              kind, "--port", str(port)], env=env, cwd=REPO)  # fmt: skip
    try:
        time.sleep(1.5)
        asyncio.run(load(port, 0.5, 4))  # warm up: connections, first calls
        before, start = cpu_seconds(child.pid), time.perf_counter()
        n_streams = streams if kind.endswith("-stream") else 0
        answered = asyncio.run(load(port, seconds, concurrency, rate, n_streams))
        cpu_s, wall_s = cpu_seconds(child.pid) - before, time.perf_counter() - start
    finally:
        child.terminate()
        child.wait(10)
    return {"kind": kind, "calls": answered, "calls_per_s": answered / wall_s,
            "server_cpu_ms_per_call": 1e3 * cpu_s / max(answered, 1)}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.devices.server_kinds", description=__doc__)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="open loop: Poisson arrivals at this many calls/s (0: closed loop)",
    )
    p.add_argument(
        "--streams",
        type=int,
        default=1000,
        help="streams the *-stream kinds open (messages go to them at random, at --rate or, "
        "when that is 0, 1,000 per second)",
    )
    p.add_argument("--rounds", type=int, default=3, help="every kind once per round")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"comma list of {KINDS}")
    p.add_argument("--out", help="write the rows as JSON here")
    p.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    kinds = [k for k in args.kinds.split(",") if k]
    if bad := [k for k in kinds if k not in KINDS]:
        p.error(f"unknown kind {bad[0]!r}; use {KINDS}")
    rows = []
    for round_index in range(args.rounds):  # interleaved: each kind meets the same load
        for kind in kinds:
            row = measure(kind, args.seconds, args.concurrency, args.rate, args.streams)
            rows.append({"round": round_index, **row})
            print(json.dumps(rows[-1]), flush=True)
    medians = {
        kind: {key: statistics.median(r[key] for r in rows if r["kind"] == kind)
               for key in ("calls_per_s", "server_cpu_ms_per_call")}
        for kind in kinds
    }  # fmt: skip
    print(json.dumps({"medians": medians}, indent=1))
    if args.out:
        out = {"loadavg": os.getloadavg(), "concurrency": args.concurrency, "rate": args.rate,
               "streams": args.streams,
               "code": code_version(), "medians": medians, "rows": rows}  # fmt: skip
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
