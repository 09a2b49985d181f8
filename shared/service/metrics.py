"""Prometheus metrics with one prefix across the three services.

Every service exports, labelled by ``service`` ("device", "channel", "edge"):

- ``coinference_requests_total{service,method,code}``: calls answered, by method and status
  (gRPC status name for channel and edge, HTTP status for the device);
- ``coinference_request_seconds{service,method}``: handling time of each call, seconds;
- ``coinference_stage_seconds{service,stage}``: per-stage latency measured where it happens.

Service-specific metrics are named ``coinference_<service>_<name>`` (e.g.
``coinference_channel_psnr_db``, ``coinference_edge_batch_size``). Each instance has its own
registry, so tests can build many.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

PREFIX = "coinference_"
# 100 us .. 10 s: an ONNX call on a small image up to a deadline-bound request
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip


class ServiceMetrics:
    """The common metrics of one service; subclasses add their own with :meth:`counter` etc."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            PREFIX + "requests",
            "Calls answered, by method and status code",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.request_seconds = self._latency(
            "request_seconds", "Handling time per call, seconds", "method"
        )
        self.stage_seconds = self._latency(
            "stage_seconds", "Per-stage latency measured where the span happens, seconds", "stage"
        )

        # labelled children, looked up once: ``labels()`` costs more than the observation
        self._request_counts: dict[tuple[str, str], Any] = {}
        self._request_times: dict[str, Any] = {}
        self._stages: dict[str, Any] = {}

    def _latency(self, name: str, documentation: str, label: str) -> Histogram:
        """A common latency histogram ``coinference_<name>{service,<label>}``."""
        return Histogram(
            PREFIX + name,
            documentation,
            ["service", label],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    # -- recording -----------------------------------------------------------------------
    @staticmethod
    def later(record: Callable[..., None], *args: Any) -> None:
        """``record(*args)`` on the event loop's next turn, after the reply being built is on
        its way, so bookkeeping stays off the request's critical path (docs/SERVING.md); at
        once when no event loop runs in this thread."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            record(*args)
            return
        loop.call_soon(record, *args)

    def count_request(self, method: str, code: str) -> None:
        """One more ``method`` answered with ``code`` (e.g. an item of a batch call)."""
        count = self._request_counts.get((method, code))
        if count is None:
            count = self.requests.labels(service=self.service, method=method, code=code)
            self._request_counts[method, code] = count
        count.inc()

    def observe_request(self, method: str, code: str, seconds: float) -> None:
        self.count_request(method, code)
        timing = self._request_times.get(method)
        if timing is None:
            timing = self.request_seconds.labels(service=self.service, method=method)
            self._request_times[method] = timing
        timing.observe(seconds)

    def observe_stage(self, stage: str, seconds: float) -> None:
        child = self._stages.get(stage)
        if child is None:
            child = self._stages[stage] = self.stage_seconds.labels(
                service=self.service, stage=stage
            )
        child.observe(max(0.0, seconds))

    def requests_with(self, method: str, code: str) -> float:
        """The current count of ``method`` calls answered with ``code`` (for tests)."""
        return self.requests.labels(service=self.service, method=method, code=code)._value.get()

    # -- service-specific metrics, named coinference_<service>_<name> ----------------------
    def _name(self, name: str) -> str:
        return f"{PREFIX}{self.service}_{name}"

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(self._name(name), documentation, labels, registry=self.registry)

    def gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(self._name(name), documentation, registry=self.registry)

    def histogram(self, name: str, documentation: str, buckets) -> Histogram:
        return Histogram(self._name(name), documentation, buckets=buckets, registry=self.registry)

    def serve(self, port: int) -> None:
        """Expose /metrics over HTTP on ``port`` (0 = off)."""
        if port:
            start_http_server(port, registry=self.registry)
