"""gRPC client from the device to the channel proxy, with a deadline on every call.

Failures a caller cannot fix by changing the request (channel or edge down, deadline
exceeded) raise :class:`ChannelUnavailable` (HTTP 503). After such a failure the gRPC
channel is dropped and re-created on the next call, so the device recovers as soon as the
channel/edge are back instead of waiting out gRPC's reconnect back-off.
"""

from __future__ import annotations

import threading

import grpc

from shared.rpc import coinference_pb2 as pb
from shared.rpc import coinference_pb2_grpc as pb_grpc

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


class ChannelRejected(ChannelError):
    """The channel or edge refused the request as invalid (HTTP 422)."""

    status = 422


class ChannelClient:
    """Calls the Channel service at ``target`` (HOST:PORT); each call has ``deadline_s``."""

    def __init__(self, target: str, deadline_s: float = 2.0):
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
        self.target = target
        self.deadline_s = float(deadline_s)
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.ChannelStub | None = None

    def _get_stub(self) -> pb_grpc.ChannelStub:
        with self._lock:
            if self._stub is None:
                self._channel = grpc.insecure_channel(self.target, options=_CHANNEL_OPTIONS)
                self._stub = pb_grpc.ChannelStub(self._channel)
            return self._stub

    def _drop(self, stub: pb_grpc.ChannelStub) -> None:
        """Forget a channel that failed (only if no other thread replaced it already)."""
        with self._lock:
            if self._stub is stub and self._channel is not None:
                self._channel.close()
                self._channel, self._stub = None, None

    def _call(self, method: str, request, timeout_s: float | None = None):
        stub = self._get_stub()
        timeout = self.deadline_s if timeout_s is None else min(timeout_s, self.deadline_s)
        try:
            return getattr(stub, method)(request, timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            if code in _UNAVAILABLE_CODES:
                self._drop(stub)
                what = (
                    f"no answer within the {timeout:g} s deadline"
                    if code == grpc.StatusCode.DEADLINE_EXCEEDED
                    else f"unavailable ({details})"
                )
                raise ChannelUnavailable(
                    f"channel {self.target} / edge: {method} failed: {what}", code
                ) from exc
            if code in _CALLER_CODES:
                raise ChannelRejected(f"{method} rejected: {details}", code) from exc
            if code == grpc.StatusCode.FAILED_PRECONDITION:  # e.g. the edge's model id differs
                raise ChannelError(f"{method} refused by the edge: {details}", code) from exc
            name = code.name if code is not None else "UNKNOWN"
            raise ChannelError(f"{method} failed: {name}: {details}", code) from exc

    def transmit(self, transmission: pb.Transmission) -> pb.InferenceReply:
        """Send one transmission through the channel to the edge; returns the edge's reply."""
        return self._call("Transmit", transmission)

    def get_state(self, timeout_s: float | None = None) -> pb.ChannelState:
        """The channel's current state (PSNR in dB, noise variance, pilots, baud)."""
        return self._call("GetState", pb.GetStateRequest(), timeout_s)

    def get_edge_info(self, timeout_s: float | None = None) -> pb.EdgeInfo:
        """The edge's model id and whether its decoder is serving (forwarded by the channel)."""
        return self._call("GetEdgeInfo", pb.GetInfoRequest(), timeout_s)

    def set_psnr(self, psnr_db: float) -> pb.ChannelState:
        """Set the channel's PSNR (dB); returns the new state."""
        return self._call("SetPsnr", pb.SetPsnrRequest(psnr_db=float(psnr_db)))

    def close(self) -> None:
        with self._lock:
            if self._channel is not None:
                self._channel.close()
            self._channel, self._stub = None, None
