"""The open-loop driver: sends every scheduled arrival at its time over the channel's gRPC
``Transmit``, never waiting for earlier answers, and records what came back.

Latency is measured from the *scheduled* arrival time, so any lag of the driver itself counts
(no coordinated omission); ``lag_s`` records that lag separately.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import grpc
import numpy as np

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from tools.devices.population import Device, arrivals
from tools.devices.symbols import SymbolBook

STAGES = (
    "edge_queue_s", "decode_s", "edge_total_s", "channel_s", "channel_to_edge_s",
    "channel_total_s",
)  # fmt: skip


@dataclass
class Record:
    """One request as the driver saw it."""

    device: int
    scheduled_s: float  # arrival time since the start
    lag_s: float  # how late the driver sent it
    latency_s: float  # scheduled arrival -> reply (or error)
    code: str  # gRPC status name
    correct: bool = False
    replica: str = ""
    psnr_db: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)


async def drive(
    target: str,
    devices: list[Device],
    book: SymbolBook,
    duration_s: float,
    deadline_s: float = 2.0,
    seed: int = 0,
    connections: int = 4,
) -> tuple[list[Record], float]:
    """Run the schedule against the channel at ``target``; returns the records and the real
    length of the run (s, until the last answer)."""
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]  # one HTTP/2 connection each: the devices' calls spread over them
    stubs = itertools.cycle([pb_grpc.ChannelStub(ch) for ch in channels])
    rng = np.random.default_rng([seed, 2])
    beta_index = [book.beta_index(d.beta) for d in devices]
    records: list[Record] = []
    tasks: set[asyncio.Task] = set()
    model = book.manifest

    async def send(stub, device: Device, scheduled_s: float, sent_at: float) -> None:
        psnr_db = device.walk.at(scheduled_s)
        snr_index = book.snr_index(psnr_db)
        image = int(rng.integers(book.n_images))
        transmission = pb.Transmission(
            request_id=f"{device.device_id}-{scheduled_s:.6f}",
            model_id=model.model_id,
            beta=float(book.betas[beta_index[device.device_id]]),
            snr_db=float(book.snr_grid[snr_index]),
            bits_per_symbol=book.bits_per_symbol,
            d=model.d,
            symbols=book.symbols(beta_index[device.device_id], snr_index, image),
            link_psnr_db=psnr_db,
        )
        record = Record(device.device_id, scheduled_s, sent_at - scheduled_s, 0.0, "OK")
        record.psnr_db = psnr_db
        try:
            reply = await stub.Transmit(transmission, timeout=deadline_s)
            record.correct = int(reply.label) == int(book.labels[image])
            record.replica = reply.replica_id
            record.stages = {name: getattr(reply.timings, name) for name in STAGES}
        except grpc.aio.AioRpcError as exc:
            record.code = exc.code().name
        record.latency_s = time.perf_counter() - start - scheduled_s
        records.append(record)

    start = time.perf_counter()
    try:
        for scheduled_s, i in arrivals(devices, duration_s, seed):
            wait_s = start + scheduled_s - time.perf_counter()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            sent_at = time.perf_counter() - start
            task = asyncio.create_task(send(next(stubs), devices[i], scheduled_s, sent_at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        for channel in channels:
            await channel.close()
    return records, time.perf_counter() - start
