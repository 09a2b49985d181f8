"""``TransmitStream``: one long-lived stream per device instead of a unary call per
transmission (gRPC's per-call work, about 0.15-0.25 ms of server CPU, paid once per stream).

Each transmission read from the stream goes through :meth:`ChannelService.transmit`, the
path of a unary ``Transmit`` (validation, the link and its noise at the item's own
``link_psnr_db``, the coalescer toward the edge, the reply's timings and metrics), as its own
task, so the items of one stream are handled concurrently. Each item is answered with one
``BatchItemReply`` carrying its ``request_id``: the reply, or the gRPC code and message it
would have failed with as a unary call (the stream stays open). Replies go out in the order
they complete, written by one writer at a time (grpc.aio allows one write in flight).

- **Deadline per item:** the stream's own deadline, as the time left of it when the item is
  read (``Transmission`` has no deadline field); the channel's ``--deadline-s`` bounds every
  item's edge call as it bounds a unary call's.
- **Backpressure:** at most ``max_in_flight`` items of a stream are in flight; while it has
  that many, the channel stops reading it, so HTTP/2 flow control holds the sender back.
- **End:** after the client half-closes, the items in flight are answered, then the stream
  ends OK. A client that cancels (or a stream deadline that passes) abandons its items in
  flight: their tasks are cancelled and awaited, and none is logged as a failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import grpc

from shared.rpc import coinference_pb2 as pb
from shared.service.errors import ServiceError, item_error

if TYPE_CHECKING:
    from channel.service import ChannelService

log = logging.getLogger(__name__)

DEFAULT_STREAM_IN_FLIGHT = 64  # items of one stream in flight before the channel stops reading
ITEM_METHOD = "TransmitStream.item"  # the per-item count and time in the channel's metrics
_OK = grpc.StatusCode.OK.name


class TransmitStream:
    """One ``TransmitStream`` call over ``service``: :meth:`serve` reads ``requests`` and
    writes each item's ``BatchItemReply`` to ``context``."""

    def __init__(self, service: ChannelService, context, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.service = service
        self.context = context
        self._slots = asyncio.Semaphore(max_in_flight)
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._broken = False  # a write failed: the call is over, whatever the reader sees

    async def serve(self, requests) -> None:
        """Answer every transmission of ``requests``; return when the client has
        half-closed and every item is answered. Cancelled (the client gave up): the items
        in flight are cancelled and awaited before the cancellation goes on."""
        loop = asyncio.get_running_loop()
        iterator = aiter(requests)
        try:
            while not self._broken:
                await self._slots.acquire()  # backpressure: read only with a slot free
                try:
                    transmission = await anext(iterator)
                except StopAsyncIteration:
                    self._slots.release()
                    break
                task = loop.create_task(self._answer(transmission, self.context.time_remaining()))
                self._tasks.add(task)
                task.add_done_callback(self._done)
            while self._tasks:  # half-closed: answer what is in flight
                await asyncio.wait(list(self._tasks))
        finally:
            await self._abandon()

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _abandon(self) -> None:
        """Cancel the items still in flight and wait until they have stopped."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _answer(self, transmission: pb.Transmission, remaining_s: float | None) -> None:
        """One item: :meth:`ChannelService.transmit` within the stream's time left, then its
        reply (or its status) written with its request id."""
        start = time.perf_counter()
        request_id = transmission.request_id
        try:
            reply = await self.service.transmit(transmission, remaining_s)
            item = pb.BatchItemReply(reply=reply, request_id=request_id)
            code = _OK
        except ServiceError as exc:
            item = item_error(exc)
            item.request_id = request_id
            code = exc.code.name
        except Exception as exc:  # a bug: this item fails INTERNAL, the stream goes on
            log.exception("TransmitStream item %r failed", request_id)
            item = pb.BatchItemReply(code=grpc.StatusCode.INTERNAL.value[0], request_id=request_id,
                                     message=f"internal error: {type(exc).__name__}")  # fmt: skip
            code = grpc.StatusCode.INTERNAL.name
        await self._write(item)
        metrics = self.service.metrics
        metrics.later(metrics.observe_request, ITEM_METHOD, code, time.perf_counter() - start)

    async def _write(self, item: pb.BatchItemReply) -> None:
        """Write ``item``, one write at a time; a failed write (the call has ended) stops
        the reader."""
        async with self._write_lock:
            if self._broken:
                return
            try:
                await self.context.write(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the call ended under us: cancelled, deadline
                self._broken = True
                log.debug("TransmitStream write failed (the call has ended): %r", exc)
