"""``grpc.aio`` client from the device to the channel proxy, with a deadline on every call.

Failures a caller cannot fix by changing the request (channel or edge down, deadline
exceeded) raise :class:`ChannelUnavailable` (HTTP 503). After such a failure the gRPC
channel is replaced on the next call, so the device recovers as soon as the channel/edge
are back instead of waiting out gRPC's reconnect back-off; the old channel is closed with a
grace period, so calls still in flight on it finish (one caller's failure never cancels
another's request).

Coalescing: ``transmit`` sends a request at once while fewer than
``max_in_flight`` calls are out; requests that arrive meanwhile wait and go together in one
``TransmitBatch`` call (up to ``max_batch`` items) as soon as a call returns. An idle device
therefore adds no wait, and under load the per-call gRPC work of the device, the channel and
the edge is paid once per batch. Each request keeps its own deadline and its own outcome. A
channel without ``TransmitBatch`` (UNIMPLEMENTED) gets one ``Transmit`` per request from
then on; QML-IB grouped transmissions always go alone (their group routes them).

The aio channel belongs to the event loop that first used it; use one client per loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc
from shared.service.coalescing import Coalescer
from shared.service.errors import status_of
from shared.service.grpc_server import grpc_options
from shared.service.security import aio_channel, auth_metadata

# Short reconnect back-off: recovery within about a second once the peer is back.
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_retries", 0),
)
_UNAVAILABLE_CODES = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,
)
_TRANSMIT_METHODS = frozenset({"Transmit", "TransmitBatch"})  # counted by ``on_call``
_CALLER_CODES = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE)


class ChannelError(RuntimeError):
    """A channel call failed. ``status`` is the HTTP status the device answers with."""

    status = 502

    def __init__(self, message: str, code: grpc.StatusCode | None = None):
        super().__init__(message)
        self.code = code


class ChannelUnavailable(ChannelError):
    """Channel or edge unreachable, or the deadline passed (HTTP 503)."""

    status = 503


class ChannelUnauthenticated(ChannelError):
    """The channel wants its admin token for this call (HTTP 401)."""

    status = 401


class ChannelRejected(ChannelError):
    """The channel or edge refused the request as invalid (HTTP 422)."""

    status = 422


def channel_error(method: str, code: grpc.StatusCode | None, details: str, target: str,
                  timeout_s: float) -> ChannelError:  # fmt: skip
    """The :class:`ChannelError` for a failed ``method`` call (or batch item) with ``code``."""
    if code in _UNAVAILABLE_CODES:
        what = (
            f"no answer within the {timeout_s:g} s deadline"
            if code == grpc.StatusCode.DEADLINE_EXCEEDED
            else f"unavailable ({details})"
        )
        return ChannelUnavailable(f"channel {target} / edge: {method} failed: {what}", code)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return ChannelUnauthenticated(f"channel {details}", code)
    if code in _CALLER_CODES:
        return ChannelRejected(f"{method} rejected: {details}", code)
    if code == grpc.StatusCode.FAILED_PRECONDITION:  # e.g. the edge's model id differs
        return ChannelError(f"{method} refused by the edge: {details}", code)
    name = code.name if code is not None else "UNKNOWN"
    return ChannelError(f"{method} failed: {name}: {details}", code)


class ChannelClient:
    """Calls the Channel service at ``target`` (HOST:PORT); each call has ``deadline_s``.

    ``credentials`` (:func:`shared.service.security.channel_credentials`) turn TLS on;
    ``max_message_bytes`` limits messages both ways. ``max_batch`` and ``max_in_flight``
    set the coalescing of transmissions (module docstring); ``max_batch=1`` turns it off."""

    def __init__(
        self,
        target: str,
        deadline_s: float = 2.0,
        credentials: grpc.ChannelCredentials | None = None,
        max_message_bytes: int | None = None,
        max_batch: int = 32,
        max_in_flight: int = 2,
        on_call: Callable[[int], None] | None = None,
    ):
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError(
                f"max_batch and max_in_flight must be >= 1, got {max_batch}, {max_in_flight}"
            )
        self.max_batch, self.max_in_flight = int(max_batch), int(max_in_flight)
        self._coalescer = Coalescer(
            self._send_one,
            self._send_batch,
            self.max_batch,
            self.max_in_flight,
            closed_error=lambda: ChannelUnavailable("device shutting down"),
        )
        self._batch_rpc = True  # False once the channel answered UNIMPLEMENTED
        self.on_call = on_call  # on_call(n): a Transmit(Batch) call for n transmissions starts
        self.target = target
        self.deadline_s = float(deadline_s)
        self.credentials = credentials
        self.options = _CHANNEL_OPTIONS + tuple(
            grpc_options(max_message_bytes) if max_message_bytes else ()
        )
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.ChannelStub | None = None
        self._closing: set[asyncio.Task] = set()

    def _get_stub(self) -> pb_grpc.ChannelStub:
        if self._stub is None:  # one event loop: no lock needed between the check and set
            self._channel = aio_channel(self.target, self.credentials, self.options)
            self._stub = pb_grpc.ChannelStub(self._channel)
        return self._stub

    def _drop(self, stub: pb_grpc.ChannelStub) -> None:
        """Replace a channel that failed (unless another call replaced it already); the old
        one is closed after a grace period, so other calls on it are not cancelled."""
        if self._stub is stub and self._channel is not None:
            task = asyncio.get_running_loop().create_task(self._channel.close(self.deadline_s))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            self._channel, self._stub = None, None

    async def _call(
        self, method: str, request, timeout_s: float | None = None, token: str | None = None
    ):
        """``method`` with deadline min(``deadline_s``, ``timeout_s``), s; ``token`` is sent
        as the admin bearer token."""
        stub = self._get_stub()
        timeout = self.deadline_s if timeout_s is None else min(timeout_s, self.deadline_s)
        if self.on_call is not None and method in _TRANSMIT_METHODS:
            self.on_call(len(request.items) if method == "TransmitBatch" else 1)
        try:
            return await getattr(stub, method)(
                request, timeout=timeout, metadata=auth_metadata(token)
            )
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            if code in _UNAVAILABLE_CODES:
                self._drop(stub)
            raise channel_error(method, code, details, self.target, timeout) from exc

    async def transmit(
        self, transmission: pb.Transmission, timeout_s: float | None = None
    ) -> pb.InferenceReply:
        """Send one transmission through the channel to the edge; returns the edge's reply.

        The deadline (``timeout_s``, at most ``deadline_s``) travels with the call: the
        channel gives the edge no more than what is left of it. Coalesced with concurrent
        transmissions under load (module docstring)."""
        if self.max_batch == 1 or transmission.group_id:
            return await self._call("Transmit", transmission, timeout_s)
        timeout = self.deadline_s if timeout_s is None else min(timeout_s, self.deadline_s)
        try:
            return await self._coalescer.submit(transmission, timeout)
        except TimeoutError:
            raise channel_error("Transmit", grpc.StatusCode.DEADLINE_EXCEEDED, "",
                                self.target, timeout) from None  # fmt: skip

    async def _send_one(self, transmission: pb.Transmission, timeout_s: float):
        return await self._call("Transmit", transmission, timeout_s)

    async def _send_batch(self, batch: list[pb.Transmission], timeout_s: float) -> list:
        """One TransmitBatch for ``batch``: a reply or a :class:`ChannelError` per item
        (one Transmit each against a channel without TransmitBatch)."""
        if not self._batch_rpc:
            return await self._send_each(batch, timeout_s)
        request = pb.TransmissionBatch(items=batch)
        try:
            reply = await self._call("TransmitBatch", request, timeout_s)
        except ChannelError as exc:
            if exc.code != grpc.StatusCode.UNIMPLEMENTED:
                raise
            self._batch_rpc = False  # a channel without batches
            return await self._send_each(batch, timeout_s)
        if len(reply.items) != len(batch):
            raise ChannelError(f"TransmitBatch answered {len(reply.items)} items for "
                               f"{len(batch)}")  # fmt: skip
        return [
            channel_error("Transmit", status_of(item.code), item.message, self.target, timeout_s)
            if item.code
            else item.reply
            for item in reply.items
        ]

    async def _send_each(self, batch: list[pb.Transmission], timeout_s: float) -> list:
        return await asyncio.gather(
            *(self._send_one(t, timeout_s) for t in batch), return_exceptions=True
        )

    async def get_state(self, timeout_s: float | None = None) -> pb.ChannelState:
        """The channel's current state (PSNR in dB, noise variance, pilots, baud)."""
        return await self._call("GetState", pb.GetStateRequest(), timeout_s)

    async def get_edge_info(self, timeout_s: float | None = None) -> pb.EdgeInfo:
        """The edge's model id and whether its decoder is serving (forwarded by the channel)."""
        return await self._call("GetEdgeInfo", pb.GetInfoRequest(), timeout_s)

    async def set_psnr(
        self, psnr_db: float, token: str | None = None, link: int | None = None
    ) -> pb.ChannelState:
        """Set the channel's PSNR (dB), of ``link`` only when given (multi-device), with the
        admin ``token`` if given; the new state."""
        request = pb.SetPsnrRequest(psnr_db=float(psnr_db))
        if link is not None:
            request.link = link
        return await self._call("SetPsnr", request, token=token)

    async def set_link_mode(self, mode: str, token: str | None = None) -> pb.ChannelState:
        """Switch the channel's link (analog | ideal | ldpc-qam) with the admin ``token`` if
        given; the new state."""
        return await self._call("SetLinkMode", pb.LinkModeRequest(mode=mode), token=token)

    async def set_fading(self, fading: dict, token: str | None = None) -> pb.ChannelState:
        """Set the channel's block fading (``FadingSettings`` fields; coherence None = 0, one
        block per transmission) with the admin ``token`` if given; the new state."""
        settings = pb.FadingSettings(**{**fading, "coherence": fading.get("coherence") or 0})
        return await self._call("SetFading", pb.SetFadingRequest(fading=settings), token=token)

    async def close(self) -> None:
        await self._coalescer.close()  # calls out fail at once, as does what still waits
        if self._channel is not None:
            await self._channel.close()
        self._channel, self._stub = None, None
        for task in list(self._closing):
            await asyncio.gather(task, return_exceptions=True)
