"""Prometheus metrics of the edge server (own registry, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class EdgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "coinference_edge_requests", "Decode calls received", registry=self.registry
        )
        self.failures = Counter(
            "coinference_edge_failures",
            "Decode calls that failed, by gRPC status code",
            ["code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "coinference_edge_latency_seconds",
            "Latency per stage: queue, decode (batched call), total",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "coinference_edge_batch_size",
            "Requests per decoder call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def serve(self, port: int) -> None:
        """Expose /metrics on ``port`` (0 = off)."""
        if port:
            start_http_server(port, registry=self.registry)
