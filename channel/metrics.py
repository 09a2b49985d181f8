"""Prometheus metrics of the channel proxy (own registry, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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


class ChannelMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "coinference_channel_requests", "Transmit calls received", registry=self.registry
        )
        self.failures = Counter(
            "coinference_channel_failures",
            "Transmit calls that failed, by gRPC status code",
            ["code"],
            registry=self.registry,
        )
        self.symbols = Counter(
            "coinference_channel_symbols",
            "Data symbols sent through the channel",
            registry=self.registry,
        )
        self.pilot_symbols = Counter(
            "coinference_channel_pilot_symbols",
            "Pilot symbols sent through the channel",
            registry=self.registry,
        )
        self.psnr_db = Gauge(
            "coinference_channel_psnr_db", "Current channel PSNR in dB", registry=self.registry
        )
        self.latency = Histogram(
            "coinference_channel_latency_seconds",
            "Latency per stage: channel (own work), airtime (modelled), channel_to_edge, total",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def serve(self, port: int) -> None:
        """Expose /metrics on ``port`` (0 = off)."""
        if port:
            start_http_server(port, registry=self.registry)
