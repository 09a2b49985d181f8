"""How the simulated devices reach the channel: a unary ``Transmit`` call per request, or one
long-lived ``TransmitStream`` per device (``--transport unary,stream``).

Both take a request as the pre-serialized ``Transmission`` bytes and give back the
``InferenceReply``, or raise :class:`Failed` with the gRPC status name, within the request's
deadline. On a stream the deadline is the driver's own (a reply that comes later is dropped
and the request counts DEADLINE_EXCEEDED, as a unary call's would); the channel bounds each
item by its ``--deadline-s`` too, the stream itself having no deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import grpc

from shared.rpc import coinference_pb2 as pb
from shared.service.errors import status_of

log = logging.getLogger(__name__)

TRANSMIT = "/coinference.v1.Channel/Transmit"
TRANSMIT_STREAM = "/coinference.v1.Channel/TransmitStream"
CLOSE_TIMEOUT_S = 10.0  # after the last request: the streams' remaining replies and their end


class Failed(Exception):
    """A request that failed with gRPC status ``code`` (its name, e.g. "UNAVAILABLE")."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class UnaryTransport:
    """One ``Transmit`` call per request, round robin over the connections."""

    def __init__(self, channels: list[grpc.aio.Channel], n_devices: int) -> None:
        self.calls = itertools.cycle([
            ch.unary_unary(TRANSMIT, request_serializer=None,
                           response_deserializer=pb.InferenceReply.FromString)
            for ch in channels
        ])  # fmt: skip

    @staticmethod
    def connections(n_devices: int, least: int) -> int:
        """How many connections to open: ``least`` (calls are spread over them)."""
        return least

    async def open(self) -> None:
        """Nothing to open: every request makes its own call."""

    async def request(self, device_id: int, request_id: str, raw: bytes, timeout_s: float):
        try:
            return await next(self.calls)(raw, timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise Failed(exc.code().name) from None

    async def close(self) -> None:
        """Nothing to close."""


class DeviceStream:
    """One device's ``TransmitStream``: its requests written one at a time, its replies
    read by one reader and handed to the waiting request by ``request_id``."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.call = channel.stream_stream(
            TRANSMIT_STREAM,
            request_serializer=None,
            response_deserializer=pb.BatchItemReply.FromString,
        )()
        self.pending: dict[str, asyncio.Future] = {}
        self._write_lock = asyncio.Lock()
        self.reader = asyncio.get_running_loop().create_task(self._read())
        self.ended: str | None = None  # the status name once the stream has ended

    async def request(self, request_id: str, raw: bytes, timeout_s: float):
        start = time.perf_counter()
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        try:
            async with self._write_lock:  # grpc.aio: one write in flight per call
                if self.ended is not None:
                    raise Failed(self.ended)
                await self.call.write(raw)
            async with asyncio.timeout(max(timeout_s - (time.perf_counter() - start), 0.0)):
                return await future
        except TimeoutError:
            raise Failed(grpc.StatusCode.DEADLINE_EXCEEDED.name) from None
        except grpc.aio.AioRpcError as exc:  # the stream failed while writing
            raise Failed(exc.code().name) from None
        finally:
            self.pending.pop(request_id, None)

    async def _read(self) -> None:
        try:
            while (item := await self.call.read()) is not grpc.aio.EOF:
                future = self.pending.pop(item.request_id, None)
                if future is None or future.done():
                    continue  # its request has given up (deadline)
                if item.code:
                    future.set_exception(Failed(status_of(item.code).name))
                else:
                    future.set_result(item.reply)
            self.ended = grpc.StatusCode.CANCELLED.name  # the channel ended it early
        except grpc.aio.AioRpcError as exc:
            self.ended = exc.code().name
        for future in self.pending.values():
            if not future.done():
                future.set_exception(Failed(self.ended))

    async def close(self) -> None:
        """Half-close, then wait for the replies still due and the end of the call."""
        try:
            async with self._write_lock:
                if self.ended is None:
                    await self.call.done_writing()
            await asyncio.wait_for(asyncio.shield(self.reader), CLOSE_TIMEOUT_S)
        except (TimeoutError, grpc.aio.AioRpcError) as exc:
            log.warning("stream did not end cleanly: %r", exc)
            self.call.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)


OPEN_WAVE = 250  # devices whose streams open together
STREAMS_PER_CONNECTION = 250  # devices' streams on one connection at the most
OPEN_TRIES = 3


class StreamTransport:
    """One ``TransmitStream`` per device, the devices' streams spread over the connections."""

    def __init__(self, channels: list[grpc.aio.Channel], n_devices: int) -> None:
        self.channels, self.n_devices = channels, n_devices
        self.streams: list[DeviceStream] = []

    @staticmethod
    def connections(n_devices: int, least: int) -> int:
        """How many connections to open: ``least``, and more so that no connection carries more
        than ``STREAMS_PER_CONNECTION`` devices' streams."""
        return max(least, -(-n_devices // STREAMS_PER_CONNECTION))

    async def open(self) -> None:
        """Open every device's stream and wait until each is established: ``OPEN_WAVE`` devices
        at a time, as a cell's devices do not all connect in the same millisecond, and a stream
        whose opening fails is opened again (up to ``OPEN_TRIES`` times; grpc.aio cancelled
        0.2–0.6% of 2,000 streams opened at once on one channel process)."""
        self.streams = [None] * self.n_devices
        for start in range(0, self.n_devices, OPEN_WAVE):
            wave = range(start, min(start + OPEN_WAVE, self.n_devices))
            await asyncio.gather(*(self._open_one(i) for i in wave))

    async def _open_one(self, device_id: int) -> None:
        channel = self.channels[device_id % len(self.channels)]
        for attempt in range(OPEN_TRIES):
            stream = DeviceStream(channel)
            try:
                await stream.call.wait_for_connection()
            except grpc.aio.AioRpcError:
                await asyncio.gather(stream.reader, return_exceptions=True)
                if attempt == OPEN_TRIES - 1:
                    raise
                continue
            self.streams[device_id] = stream
            return

    async def request(self, device_id: int, request_id: str, raw: bytes, timeout_s: float):
        return await self.streams[device_id].request(request_id, raw, timeout_s)

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.streams))


TRANSPORTS = {"unary": UnaryTransport, "stream": StreamTransport}
