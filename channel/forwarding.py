"""How the channel's transmissions reach the edge: one Decode each, or coalesced into
DecodeBatch calls, and the status the channel's caller sees for an edge failure.

With batching on (the channel's ``--edge-batching``, default on), transmissions from
different devices that arrive while the channel's calls to the edge are out go together in
one ``DecodeBatch`` (:class:`shared.service.coalescing.Coalescer`, the rule the device uses
toward the channel): a transmission is forwarded at once while fewer than
``--edge-in-flight`` calls are out (default one per edge replica the target names), up to
``--edge-batch`` per call. Each item has already
met its own noise (the link runs per transmission, before this module); it keeps its own
deadline, status and reply. A failed DecodeBatch call (the edge died mid-batch) fails the
items it carried only. QML-IB grouped transmissions always go alone, as ``Decode`` on the
``ring_hash`` channel (their group routes them, ``channel/edge_client.py``); batches go over
``round_robin``, so with several replicas each call, not each transmission, is balanced.
``--edge-batch-delay-ms`` (default 0, the rule as the device has it) is the option that lets
a transmission wait that long for others even while a call slot is free.
"""

from __future__ import annotations

import asyncio

import grpc

from channel.metrics import ChannelMetrics
from shared.rpc import coinference_pb2 as pb
from shared.service.coalescing import Coalescer
from shared.service.errors import ServiceError, item_error, status_of

# Edge status codes the caller can act on: passed through with the edge's message.
PASS_THROUGH = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.CANCELLED,
}

DEFAULT_EDGE_BATCH = 64  # transmissions per DecodeBatch at most
DEFAULT_EDGE_IN_FLIGHT = 1  # calls to the edge out (per replica) before transmissions wait


class EdgeForwarder:
    """Sends received transmissions to the edge; raises :class:`ServiceError` on failure.

    ``edge_call(transmission, timeout_s)`` is the edge's Decode, ``edge_batch_call(batch,
    timeout_s)`` its DecodeBatch (None: one Decode per item; an edge that answers
    UNIMPLEMENTED gets one Decode per item from then on); both raise ``grpc.RpcError``.
    ``batching`` coalesces :meth:`decode` calls (module docstring)."""

    def __init__(
        self,
        edge_call,
        edge_batch_call=None,
        edge_target: str = "",
        batching: bool = True,
        max_batch: int = DEFAULT_EDGE_BATCH,
        max_in_flight: int = DEFAULT_EDGE_IN_FLIGHT,
        metrics: ChannelMetrics | None = None,
        max_delay_s: float = 0.0,
    ) -> None:
        self.edge_call = edge_call
        self.edge_batch_call = edge_batch_call
        self.edge_target = edge_target
        self.batching = bool(batching)
        observe = metrics.edge_batch_size.observe if metrics is not None else None
        self._coalescer = Coalescer(
            self._decode_one,
            self._decode_items,
            max_batch,
            max_in_flight,
            closed_error=lambda: ServiceError(grpc.StatusCode.UNAVAILABLE, "channel stopping"),
            max_delay_s=max_delay_s,
        )
        self._observe = observe

    async def decode(self, received: pb.Transmission, timeout_s: float) -> pb.InferenceReply:
        """The edge's reply to one transmission (coalesced with others when batching is on
        and it carries no group), within ``timeout_s`` (s)."""
        if not self.batching or received.group_id:
            return await self._decode_one(received, timeout_s)
        try:
            return await self._coalescer.submit(received, timeout_s)
        except TimeoutError:
            raise self.map_status(grpc.StatusCode.DEADLINE_EXCEEDED, "", timeout_s) from None

    async def _decode_one(self, received: pb.Transmission, timeout_s: float):
        if self._observe is not None:
            self._observe(1)
        try:
            return await self.edge_call(received, timeout_s)
        except grpc.RpcError as exc:
            raise self.map_error(exc, timeout_s) from None

    async def _decode_items(self, items: list[pb.Transmission], timeout_s: float) -> list:
        """One DecodeBatch for ``items``: a reply or a :class:`ServiceError` per item."""
        batch = pb.TransmissionBatch(items=items)
        try:
            reply = await self.decode_batch(batch, timeout_s)
        except grpc.RpcError as exc:
            raise self.map_error(exc, timeout_s) from None
        if len(reply.items) != len(items):
            raise ServiceError(grpc.StatusCode.INTERNAL, f"edge answered {len(reply.items)} "
                               f"items for {len(items)}")  # fmt: skip
        return [
            self.map_status(status_of(item.code), item.message, timeout_s)
            if item.code
            else item.reply
            for item in reply.items
        ]

    async def decode_batch(self, batch: pb.TransmissionBatch, timeout_s: float) -> pb.BatchReply:
        """The edge's DecodeBatch (raises ``grpc.RpcError`` when the call fails); against an
        edge without it (UNIMPLEMENTED), one Decode per item from then on."""
        if self._observe is not None:
            self._observe(len(batch.items))
        if self.edge_batch_call is not None:
            try:
                return await self.edge_batch_call(batch, timeout_s)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                self.edge_batch_call = None

        async def one(transmission):
            try:
                return pb.BatchItemReply(reply=await self.edge_call(transmission, timeout_s))
            except grpc.RpcError as exc:
                return item_error(self.map_error(exc, timeout_s))

        return pb.BatchReply(items=await asyncio.gather(*(one(t) for t in batch.items)))

    async def close(self) -> None:
        """Fail what waits for a call (UNAVAILABLE) and cancel the calls out."""
        await self._coalescer.close()

    def map_error(self, exc: grpc.RpcError, timeout_s: float) -> ServiceError:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = exc.details() if hasattr(exc, "details") else str(exc)
        return self.map_status(code, details, timeout_s)

    def map_status(self, code: grpc.StatusCode, details: str, timeout_s: float) -> ServiceError:
        """The status the channel's caller sees for an edge failure ``code``."""
        if code in PASS_THROUGH:
            return ServiceError(code, details)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ServiceError(
                code, f"edge {self.edge_target} did not answer within {timeout_s:.3g} s"
            )
        if code == grpc.StatusCode.UNAVAILABLE:
            return ServiceError(code, f"edge {self.edge_target} unavailable: {details}")
        return ServiceError(
            grpc.StatusCode.INTERNAL, f"edge {self.edge_target} failed: {code.name}: {details}"
        )
