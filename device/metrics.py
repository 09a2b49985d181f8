"""Prometheus metrics of the device (``GET /metrics``). Latencies in seconds."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STAGES = (
    "preprocess",
    "encode",
    "device_to_channel",
    "channel",
    "airtime",
    "channel_to_edge",
    "edge_queue",
    "decode",
    "total",
)
# 100 µs .. 10 s: covers an ONNX call on a small image up to a deadline-bound request
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip


class DeviceMetrics:
    """One registry per app, so several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "device_requests_total", "Inference requests received", registry=self.registry
        )
        self.failures = Counter(
            "device_failures_total",
            "Inference requests that failed, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "device_stage_latency_seconds",
            "Per-stage latency of successful requests (airtime is modelled), seconds",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.beta = Gauge("device_beta", "Current beta knob (linear)", registry=self.registry)
        self.snr_db = Gauge(
            "device_snr_db",
            "SNR the encoder assumed in the last request (dB)",
            registry=self.registry,
        )
        self.channel_psnr_db = Gauge(
            "device_channel_psnr_db",
            "Channel PSNR reported with the last reply (dB)",
            registry=self.registry,
        )
        self.symbols_sent = Counter(
            "device_symbols_sent_total", "Channel symbols transmitted", registry=self.registry
        )
        self.bits_sent = Counter(
            "device_bits_sent_total",
            "Bits transmitted (n_symbols × bits per symbol)",
            registry=self.registry,
        )

    def observe_latency(self, latency_s: dict[str, float]) -> None:
        for stage in STAGES:
            if stage in latency_s:
                self.stage_seconds.labels(stage=stage).observe(max(0.0, latency_s[stage]))
