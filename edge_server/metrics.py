"""Prometheus metrics of the edge server (own registry, so tests can build many).

The common ``coinference_requests_total`` / ``coinference_request_seconds`` come from the
method wrapper (shared/service/grpc_server.py); stages ``queue``, ``decode`` (the batched
call) and ``total`` go to ``coinference_stage_seconds{service="edge"}``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from shared.service.metrics import ServiceMetrics

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class EdgeMetrics(ServiceMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("edge", registry)
        self.batch_size = self.histogram(
            "batch_size", "Requests per decoder call", buckets=BATCH_BUCKETS
        )
        # multi-link models: groups decoded, by outcome ("complete" | "partial")
        self.groups = self.counter("groups", "Multi-device groups decoded", ("outcome",))
