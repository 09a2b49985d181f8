"""Prometheus metrics of the device (``GET /metrics``). Latencies in seconds.

Common names (:mod:`shared.service.metrics`): ``coinference_requests_total{service="device",
method="/v1/infer",code=<HTTP status>}``, ``coinference_request_seconds`` and
``coinference_stage_seconds{service="device",stage}``; the device's own are
``coinference_device_*``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from shared.service.metrics import ServiceMetrics

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


class DeviceMetrics(ServiceMetrics):
    """One registry per app, so several apps in one process do not collide."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("device", registry)
        self.failures = self.counter(
            "failures", "Inference requests that failed, by reason", ("reason",)
        )
        self.beta = self.gauge("beta", "Current beta knob (linear)")
        self.snr_db = self.gauge("snr_db", "SNR the encoder assumed in the last request (dB)")
        self.channel_psnr_db = self.gauge(
            "channel_psnr_db", "Channel PSNR reported with the last reply (dB)"
        )
        self.symbols_sent = self.counter("symbols_sent", "Channel symbols transmitted")
        self.bits_sent = self.counter("bits_sent", "Bits transmitted (n_symbols x bits/symbol)")
        self.transmit_batch_size = self.histogram(
            "transmit_batch_size",
            "Transmissions per call to the channel (1 = sent alone; more: coalesced under load)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )

    def observe_latency(self, latency_s: dict[str, float]) -> None:
        for stage in STAGES:
            if stage in latency_s:
                self.observe_stage(stage, latency_s[stage])
