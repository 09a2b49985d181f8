"""The ``grpc.aio`` server every gRPC service runs (channel, edge).

:class:`GrpcServer` holds what they share: message size options, the standard health
service (per service name and overall ""), server reflection, and
:class:`ServiceMethods`, which wraps each of the service's own methods once, when it is
registered: it times each call into
``coinference_requests_total`` / ``coinference_request_seconds`` and maps a
:class:`~shared.service.errors.ServiceError` raised by the plain service class to its gRPC
status (an unexpected exception becomes INTERNAL with a one-line message, logged here).
With an admin token, the wrapper refuses the service's admin methods (the calls that
change state, e.g. the channel's ``SetPsnr``) without ``authorization: Bearer <token>``
metadata: UNAUTHENTICATED, counted like any other status. TLS: ``credentials`` from
:func:`shared.service.security.server_credentials` (None = plaintext).
:meth:`GrpcServer.from_settings` builds one from a service's settings, over a servicer that
derives from :class:`ServiceServicer`; :func:`serve_until_signal` runs until SIGTERM/SIGINT, then
shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shared.service.errors import ServiceError
from shared.service.metrics import ServiceMetrics
from shared.service.security import AUTH_METADATA_KEY, bearer_token, check_admin

if TYPE_CHECKING:
    from shared.service.settings import GrpcServiceSettings

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def grpc_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    """Message size limits, the same for a server and the channels it calls."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


# A server lets gRPC receive up to this many times its limit, so that the interceptor can
# refuse a message over the limit itself: RESOURCE_EXHAUSTED with a message naming the
# setting, counted in the metrics. Beyond it gRPC refuses the message before any handler.
RECEIVE_CEILING_FACTOR = 2


def server_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", RECEIVE_CEILING_FACTOR * max_message_bytes),
    ]


class _Oversized:
    """What the wrapped deserializer returns for a message over the limit."""

    def __init__(self, size: int) -> None:
        self.size = size

    def error(self, method: str, limit: int | None) -> ServiceError:
        return ServiceError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"{method}: message of {self.size} bytes is over the limit of {limit} bytes "
            "(the server's --max-message-bytes); send less",
        )


class ServiceMethods:
    """Metrics, error mapping and the admin-token check around the unary and
    stream-stream methods of ``service_names``, applied once when the servicers are
    registered (a per-call server interceptor cost about 25 us per call, docs/SERVING.md);
    ``admin_methods`` (short names) need ``admin_token`` when it is set. A stream-stream
    method is a coroutine that writes with ``context.write``; its call is timed and counted
    once, whole, and a request over the message limit ends it with RESOURCE_EXHAUSTED."""

    def __init__(
        self,
        metrics: ServiceMetrics,
        service_names: Iterable[str],
        admin_methods: Iterable[str] = (),
        admin_token: str | None = None,
        max_message_bytes: int | None = None,
    ) -> None:
        self.metrics = metrics
        self.max_message_bytes = max_message_bytes
        self.service_names = frozenset(service_names)
        self.admin_methods = frozenset(admin_methods)
        self.admin_token = admin_token

    def registrar(self, server: grpc.aio.Server) -> _Registrar:
        """What a generated ``add_<Service>Servicer_to_server`` registers with."""
        return _Registrar(server, self)

    def wrap(self, service_name: str, method: str, handler: grpc.RpcMethodHandler):
        """``handler`` of ``/service_name/method`` with the service's behaviour around it
        (other services' handlers, and unary-stream or stream-unary ones, are returned as
        they are)."""
        if service_name not in self.service_names:
            return handler
        limit = self.max_message_bytes
        deserialize = handler.request_deserializer

        def limited_deserialize(raw: bytes):
            if limit is not None and len(raw) > limit:
                return _Oversized(len(raw))
            return deserialize(raw) if deserialize is not None else raw

        serialize = handler.response_serializer
        full_method = f"/{service_name}/{method}"
        if handler.stream_stream is not None:
            streaming = handler.stream_stream

            async def stream(requests, context):
                work = streaming(_within_limit(requests, method, limit), context)
                return await self._outcome(method, full_method, context, work)

            return grpc.stream_stream_rpc_method_handler(stream, limited_deserialize, serialize)
        if handler.unary_unary is None:
            return handler
        behaviour = handler.unary_unary
        admin_token = self.admin_token if method in self.admin_methods else None

        async def checked(request, context):
            if isinstance(request, _Oversized):
                raise request.error(method, limit)
            if admin_token is not None:
                _check_admin(method, context, admin_token)
            return await behaviour(request, context)

        async def call(request, context):
            return await self._outcome(method, full_method, context, checked(request, context))

        return grpc.unary_unary_rpc_method_handler(call, limited_deserialize, serialize)

    async def _outcome(self, method: str, full_method: str, context, work: Awaitable):
        """``await work``: timed and counted by its status; a ServiceError aborts the call
        with its status, an unexpected exception with INTERNAL (logged here)."""
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return await work
        except ServiceError as exc:
            code = exc.code
            await context.abort(exc.code, exc.message)
        except asyncio.CancelledError:  # the caller gave up (or the server stops)
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as exc:
            code = _code_of(context)
            if code is None:  # a bug: log it, answer without a stack trace
                code = grpc.StatusCode.INTERNAL
                log.exception("%s failed", full_method)
                await context.abort(code, f"internal error: {type(exc).__name__}")
            raise
        finally:
            metrics = self.metrics
            metrics.later(metrics.observe_request, method, code.name, time.perf_counter() - start)


async def _within_limit(requests: AsyncIterator, method: str, limit: int | None):
    """The stream's requests; ServiceError(RESOURCE_EXHAUSTED) at one over the limit."""
    async for request in requests:
        if isinstance(request, _Oversized):
            raise request.error(method, limit)
        yield request


class _Registrar:
    """Stands in for the server while generated code registers a servicer: its method
    handlers are wrapped (:meth:`ServiceMethods.wrap`) and registered on the real server,
    both as registered methods and as the generic handler of their service."""

    def __init__(self, server: grpc.aio.Server, methods: ServiceMethods) -> None:
        self.server = server
        self.methods = methods
        self._generic: list[grpc.GenericRpcHandler] = []
        self._registered: set[str] = set()

    def add_registered_method_handlers(self, service_name: str, method_handlers) -> None:
        wrapped = {
            name: self.methods.wrap(service_name, name, handler)
            for name, handler in method_handlers.items()
        }
        self._registered.add(service_name)
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service_name, wrapped),)
        )
        self.server.add_registered_method_handlers(service_name, wrapped)

    def add_generic_rpc_handlers(self, handlers) -> None:
        self._generic.extend(handlers)  # generated code adds the same methods registered

    def finish(self) -> None:
        """Pass on the generic handlers whose service registered no methods of its own;
        ValueError for one of the service's names (it would run unwrapped)."""
        for handler in self._generic:
            name = handler.service_name() if hasattr(handler, "service_name") else None
            if name in self._registered:
                continue
            if name in self.methods.service_names or name is None:
                raise ValueError(
                    f"service {name!r} registered a generic handler only; register its "
                    "methods (add_registered_method_handlers) so that they are wrapped"
                )
            self.server.add_generic_rpc_handlers((handler,))


def _check_admin(method: str, context, admin_token: str) -> None:
    """ServiceError(UNAUTHENTICATED) unless the call carries the admin token."""
    given = None
    for key, value in context.invocation_metadata() or ():
        if key == AUTH_METADATA_KEY:
            given = bearer_token(value if isinstance(value, str) else value.decode())
    problem = check_admin(method, given, admin_token)
    if problem is not None:
        raise ServiceError(
            grpc.StatusCode.UNAUTHENTICATED,
            problem.replace(
                "'Authorization: Bearer <token>'", "metadata 'authorization: Bearer <token>'"
            ),
        )


def _code_of(context) -> grpc.StatusCode | None:
    """The status a servicer set with ``context.abort`` (None when it set none)."""
    try:
        code = context.code()
    except Exception:
        return None
    if isinstance(code, grpc.StatusCode) and code != grpc.StatusCode.OK:
        return code
    return None


class GrpcServer:
    """A ``grpc.aio`` server with health, reflection and :class:`ServiceMethods`.

    ``add_servicers(server)`` registers the service's own servicers with a generated
    ``add_<Service>Servicer_to_server``; ``server`` is a stand-in that wraps each method
    (:class:`_Registrar`). Health starts
    NOT_SERVING; :meth:`set_serving` changes it for "" and every name in ``service_names``.
    ``credentials`` turn TLS on; ``admin_methods`` need ``admin_token`` when it is set;
    ``options`` are further gRPC server options (e.g. a maximum connection age).
    """

    def __init__(
        self,
        service_names: Iterable[str],
        add_servicers: Callable[[_Registrar], None],
        metrics: ServiceMetrics,
        host: str,
        port: int,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        credentials: grpc.ServerCredentials | None = None,
        admin_methods: Iterable[str] = (),
        admin_token: str | None = None,
        options: Iterable[tuple[str, int]] = (),
    ) -> None:
        self.service_names = tuple(service_names)
        self.metrics = metrics
        methods = ServiceMethods(
            metrics, self.service_names, admin_methods, admin_token, max_message_bytes
        )
        self.server = grpc.aio.server(options=[*server_options(max_message_bytes), *options])
        registrar = methods.registrar(self.server)
        add_servicers(registrar)
        registrar.finish()
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.address = f"{host}:{port}"
        self.tls = credentials is not None
        if credentials is None:
            self.port = self.server.add_insecure_port(self.address)
        else:
            self.port = self.server.add_secure_port(self.address, credentials)

    @classmethod
    def from_settings(
        cls,
        settings: GrpcServiceSettings,
        service_name: str,
        add_servicer: Callable[[Any, Any], None],
        servicer: Any,
        metrics: ServiceMetrics,
        **options: Any,
    ) -> GrpcServer:
        """The server of one servicer at the address, message limit and TLS of ``settings``;
        ``add_servicer`` is the generated ``add_<Service>Servicer_to_server``, ``options``
        the further arguments of the constructor (admin methods, gRPC options)."""
        return cls(
            (service_name,),
            lambda server: add_servicer(servicer, server),
            metrics,
            settings.host,
            settings.port,
            settings.max_message_bytes,
            credentials=settings.server_credentials(),
            **options,
        )

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse
        status = status.SERVING if serving else status.NOT_SERVING
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def start(self, serving: bool = False) -> None:
        await self.set_serving(serving)
        await self.server.start()

    async def stop(self, grace_s: float | None) -> None:
        """Health NOT_SERVING for everyone, then finish in-flight calls within ``grace_s``."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


class ServiceServicer:
    """Base of a thin servicer over a transport-free service object (:attr:`service`): the
    service's own methods do the work, the servicer passes the requests on."""

    def __init__(self, service: Any) -> None:
        self.service = service

    @staticmethod
    def with_deadline(method: str):
        """A servicer method that returns ``await self.service.<method>(request, timeout_s)``,
        ``timeout_s`` being the caller's remaining time (None when it set no deadline)."""

        async def call(self: ServiceServicer, request, context):
            return await getattr(self.service, method)(request, context.time_remaining())

        call.__doc__ = f"``service.{method}`` within the caller's deadline."
        return call


async def wait_for_stop_signal() -> None:
    """Return on the first SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def serve_until_signal(
    server: GrpcServer,
    grace_s: float,
    name: str,
    on_stopped: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Wait for SIGTERM/SIGINT, stop ``server`` gracefully, then run ``on_stopped``."""
    await wait_for_stop_signal()
    log.info("%s shutting down (grace %g s)", name, grace_s)
    await server.stop(grace_s)
    if on_stopped is not None:
        await on_stopped()
    log.info("%s stopped", name)
    return 0
