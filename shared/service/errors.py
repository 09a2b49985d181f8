"""One error type for the services: a failure with the gRPC status the caller should see.

Plain service classes (``ChannelService``, ``EdgeDecoder``) raise :class:`ServiceError`;
the transport layer maps it once (:class:`shared.service.grpc_server.ServiceMethods`
aborts the RPC with ``code`` and ``message``; no stack trace reaches the caller).
"""

from __future__ import annotations

import grpc

from shared.rpc import coinference_pb2 as pb


class ServiceError(Exception):
    """A failure with the gRPC status code the caller should see."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ServiceError({self.code.name}, {self.message!r})"


# TransmitBatch / DecodeBatch: the most items one call may carry (the device sends at most
# --transmit-batch, 32 by default); a bigger batch is refused whole.
MAX_BATCH_ITEMS = 256


def check_batch_size(n_items: int, method: str) -> None:
    """ServiceError(INVALID_ARGUMENT) when a batch call carries more than MAX_BATCH_ITEMS."""
    if n_items > MAX_BATCH_ITEMS:
        raise ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{method} carries {n_items} items; at most {MAX_BATCH_ITEMS}: split the batch",
        )


_STATUS_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


def status_of(value: int) -> grpc.StatusCode:
    """The status whose number is ``value`` (a batch item's ``code``); UNKNOWN if none is."""
    return _STATUS_BY_VALUE.get(value, grpc.StatusCode.UNKNOWN)


def item_error(error: ServiceError) -> pb.BatchItemReply:
    """A batch item that failed with ``error``: its status code and message."""
    return pb.BatchItemReply(code=error.code.value[0], message=error.message)


def invalid_argument(message: str) -> ServiceError:
    """A value the caller can fix (INVALID_ARGUMENT)."""
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message)


def failed_precondition(message: str) -> ServiceError:
    """A request that cannot run in the current state, e.g. another model id."""
    return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, message)
