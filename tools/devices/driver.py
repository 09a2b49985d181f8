"""The open-loop driver: sends every scheduled arrival at its time over the channel's gRPC
``Transmit`` (or the device's ``TransmitStream``), never waiting for earlier answers, and
records what came back.

Latency is measured from the *scheduled* arrival time, so any lag of the driver itself counts
(no coordinated omission); ``lag_s`` records that lag separately. With a ``concurrency``,
:func:`drive` runs closed loop instead, a fixed number of requests out (throughput at
saturation).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import grpc
import numpy as np

from shared.rpc import coinference_pb2 as pb
from shared.service.checks import check_at_least
from tools.devices.population import Device, arrivals
from tools.devices.symbols import SymbolBook
from tools.devices.transports import TRANSPORTS, Failed

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


class Sender:
    """Sends one device's transmission through ``transport`` (tools/devices/transports.py: a
    unary ``Transmit`` call, or the device's ``TransmitStream``) and records the outcome. The
    request is the book's pre-serialized message of the device's (β, SNR) and a random
    image, with this request's id and link PSNR appended (no per-request protobuf building of
    the symbols: the driver's CPU stays small beside the services')."""

    def __init__(self, transport, book: SymbolBook, devices: list[Device], deadline_s: float,
                 seed: int) -> None:  # fmt: skip
        self.transport = transport
        self.book, self.deadline_s = book, deadline_s
        self.rng = np.random.default_rng([seed, 2])
        self.beta_index = [book.beta_index(d.beta) for d in devices]
        self.records: list[Record] = []
        self.start = time.perf_counter()

    async def send(self, device: Device, scheduled_s: float, sent_at: float) -> None:
        """One request of ``device`` scheduled at ``scheduled_s`` (s since the start), sent at
        ``sent_at``; latency runs from the scheduled time."""
        book = self.book
        psnr_db = device.walk.at(scheduled_s)
        image = int(self.rng.integers(book.n_images))
        request_id = f"{device.device_id}-{scheduled_s:.6f}"
        own = pb.Transmission(request_id=request_id, link_psnr_db=psnr_db).SerializeToString()
        raw = book.message(self.beta_index[device.device_id], book.snr_index(psnr_db), image)
        record = Record(device.device_id, scheduled_s, sent_at - scheduled_s, 0.0, "OK")
        record.psnr_db = psnr_db
        try:
            reply = await self.transport.request(device.device_id, request_id, raw + own,
                                                 self.deadline_s)  # fmt: skip
            record.correct = int(reply.label) == int(book.labels[image])
            record.replica = reply.replica_id
            record.stages = {name: getattr(reply.timings, name) for name in STAGES}
        except Failed as exc:
            record.code = exc.code
        record.latency_s = time.perf_counter() - self.start - scheduled_s
        self.records.append(record)


def open_channels(target: str, connections: int) -> list[grpc.aio.Channel]:
    """One HTTP/2 connection each: the devices' calls spread over them."""
    return [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]


async def drive(
    target: str,
    devices: list[Device],
    book: SymbolBook,
    duration_s: float,
    deadline_s: float = 2.0,
    seed: int = 0,
    connections: int = 4,
    concurrency: int = 0,
    transport: str = "unary",
) -> tuple[list[Record], float]:
    """Run the load against the channel at ``target`` for ``duration_s``; returns the records
    and the real length of the run (s, until the last answer). ``transport`` "unary": a
    ``Transmit`` call per request; "stream": one ``TransmitStream`` per device, all opened
    before the first arrival (tools/devices/transports.py).

    ``concurrency`` 0: open loop, every scheduled arrival sent at its time. ``concurrency``
    N > 0: closed loop at saturation, N requests always out (each sender sends its next
    request, for the next device in turn, as soon as the last is answered; latency runs
    from each send)."""
    check_at_least("concurrency", concurrency, 0)
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {sorted(TRANSPORTS)}, got {transport!r}")
    kind = TRANSPORTS[transport]
    channels = open_channels(target, kind.connections(len(devices), connections))
    carrier = kind(channels, len(devices))
    try:
        await carrier.open()
        sender = Sender(carrier, book, devices, deadline_s, seed)
        if concurrency:
            await _saturate(sender, devices, duration_s, concurrency)
        else:
            await _schedule(sender, devices, duration_s, seed)
        run_s = time.perf_counter() - sender.start
        await carrier.close()
    finally:
        for channel in channels:
            await channel.close()
    return sender.records, run_s


async def _schedule(sender: Sender, devices: list[Device], duration_s: float, seed: int) -> None:
    """Open loop: each arrival of the schedule sent at its time, never waiting for answers."""
    tasks: set[asyncio.Task] = set()
    for scheduled_s, i in arrivals(devices, duration_s, seed):
        wait_s = sender.start + scheduled_s - time.perf_counter()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        sent_at = time.perf_counter() - sender.start
        task = asyncio.create_task(sender.send(devices[i], scheduled_s, sent_at))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)


async def _saturate(
    sender: Sender, devices: list[Device], duration_s: float, concurrency: int
) -> None:
    """Closed loop: ``concurrency`` senders, each sending as soon as its last answer came."""
    turn = itertools.cycle(devices)

    async def loop() -> None:
        while (now := time.perf_counter() - sender.start) < duration_s:
            await sender.send(next(turn), now, now)

    await asyncio.gather(*(loop() for _ in range(concurrency)))
