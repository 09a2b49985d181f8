"""In-process stand-ins for the next hop of a transmission (the edge behind a channel, the
channel behind a device), with the refusals and failures the real one can give.

    edge = StandInHop(delay_s=0.02)
    service = ChannelService(edge, seed=0, edge_batch_call=edge.batch)

    async with bare_grpc_server("Channel", ChannelStandIn(StandInHop())) as target:
        ...  # a device's ChannelClient(target) against it (tests/loopback.py)

Request ids starting with "bad" are refused with the hop's ``refusal`` (per item in a batch);
ids starting with "quick" are answered after 50 ms whatever ``delay_s`` is. ``slow_edge()``
answers ``device_transmission(k)`` with label k (where its spike is), so a reply handed to
the wrong caller shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import numpy as np

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc

QUICK_DELAY_S = 0.05
NO_BATCHES = (grpc.StatusCode.UNIMPLEMENTED, "Method not found!")


class RpcStatusError(grpc.RpcError):
    """The error a gRPC stub raises for a call that ended with ``code`` and ``details``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def echo_reply(transmission: pb.Transmission) -> pb.InferenceReply:
    """A fixed two-class answer under the transmission's own request and model ids."""
    return pb.InferenceReply(
        request_id=transmission.request_id,
        model_id=transmission.model_id,
        probabilities=[0.25, 0.75],
        label=1,
        timings=pb.Timings(edge_queue_s=0.0, decode_s=0.0, edge_total_s=0.0),
    )


async def _sleep(delay_s: float) -> None:
    if delay_s > 0:
        await asyncio.sleep(delay_s)


def _fail_with(failure: tuple[grpc.StatusCode, str] | None) -> None:
    if failure:
        raise RpcStatusError(*failure)


class StandInHop:
    """Answers a unary call (``await hop(t, timeout_s)``) or a batch (``await hop.batch(...)``)
    with ``answer(t)`` after ``delay_s``, and remembers every call: ``received`` and
    ``timeouts`` (unary), ``batches`` (the items of each batch call).

    ``down`` = (code, details) fails every call whole (a replica killed, a refused
    connection); ``no_batches`` fails batch calls UNIMPLEMENTED (a hop that predates them)."""

    def __init__(
        self,
        answer: Callable[[pb.Transmission], pb.InferenceReply] = echo_reply,
        *,
        delay_s: float = 0.0,
        refusal: tuple[grpc.StatusCode, str] = (
            grpc.StatusCode.INVALID_ARGUMENT,
            "beta outside the range",
        ),
        down: tuple[grpc.StatusCode, str] | None = None,
        no_batches: bool = False,
    ) -> None:
        self.answer, self.delay_s, self.refusal = answer, delay_s, refusal
        self.down, self.no_batches = down, no_batches
        self.received: list[pb.Transmission] = []
        self.timeouts: list[float | None] = []
        self.batches: list[list[pb.Transmission]] = []

    @property
    def received_ids(self) -> list[str]:
        return [t.request_id for t in self.received]

    @property
    def batch_sizes(self) -> list[int]:
        return [len(items) for items in self.batches]

    async def __call__(
        self, transmission: pb.Transmission, timeout_s: float | None = None
    ) -> pb.InferenceReply:
        self.received.append(transmission)
        self.timeouts.append(timeout_s)
        quick = transmission.request_id.startswith("quick")
        await _sleep(QUICK_DELAY_S if quick else self.delay_s)
        _fail_with(self.down)
        if transmission.request_id.startswith("bad"):
            raise RpcStatusError(*self.refusal)
        return self.answer(transmission)

    async def batch(
        self, batch: pb.TransmissionBatch, timeout_s: float | None = None
    ) -> pb.BatchReply:
        self.batches.append(list(batch.items))
        await _sleep(self.delay_s)
        _fail_with(self.down or (NO_BATCHES if self.no_batches else None))
        return pb.BatchReply(items=[self._item(t) for t in batch.items])

    def _item(self, transmission: pb.Transmission) -> pb.BatchItemReply:
        if transmission.request_id.startswith("bad"):
            code, message = self.refusal
            return pb.BatchItemReply(code=code.value[0], message=message)
        return pb.BatchItemReply(reply=self.answer(transmission))


def spike_reply(t: pb.Transmission) -> pb.InferenceReply:
    """The label is where the item's own spike is (see device_transmission)."""
    label = int(np.argmax(np.asarray(t.symbols)))
    return pb.InferenceReply(request_id=t.request_id, label=label,
                             timings=pb.Timings(edge_total_s=0.001))  # fmt: skip


def slow_edge(delay_s: float = 0.02) -> StandInHop:
    """An in-process edge whose Decode and DecodeBatch take ``delay_s``; request ids that
    start with "bad" are refused per item (FAILED_PRECONDITION, as a wrong model id is)."""
    refusal = (grpc.StatusCode.FAILED_PRECONDITION, "model id differs")
    return StandInHop(spike_reply, delay_s=delay_s, refusal=refusal)


def device_transmission(k: int, request_id: str | None = None, group: str = "") -> pb.Transmission:
    """Device k's transmission: a spike at symbol k (the label its reply must carry)."""
    symbols = [0.0] * 16
    symbols[k % 16] = 1.0
    return pb.Transmission(request_id=request_id or f"dev-{k}", model_id="m", beta=1e-3,
                           snr_db=20, d=16, symbols=symbols, link_psnr_db=40.0,
                           group_id=group)  # fmt: skip


class ChannelStandIn(pb_grpc.ChannelServicer):
    """The gRPC Channel service over a :class:`StandInHop`: Transmit and TransmitBatch are
    its unary and batch calls, its refusals and failures the calls' status."""

    def __init__(self, hop: StandInHop) -> None:
        self.hop = hop

    async def Transmit(self, request, context):
        return await self._answer(self.hop(request), context)

    async def TransmitBatch(self, request, context):
        return await self._answer(self.hop.batch(request), context)

    @staticmethod
    async def _answer(call, context):
        try:
            return await call
        except RpcStatusError as exc:
            await context.abort(exc.code(), exc.details())
