"""Prometheus metrics of the channel proxy (own registry, so tests can build many).

The common ``coinference_requests_total`` / ``coinference_request_seconds`` come from the
method wrapper (shared/service/grpc_server.py); stages ``channel`` (own work), ``airtime``
(modelled), ``channel_to_edge`` and ``total`` go to
``coinference_stage_seconds{service="channel"}``;
``coinference_channel_edge_replies_total{replica}`` counts replies by edge replica;
``coinference_channel_edge_batch_size`` is the number of transmissions per call to the edge
(1 for a lone Decode; channel/forwarding.py).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from shared.service.metrics import ServiceMetrics

EDGE_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ChannelMetrics(ServiceMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("channel", registry)
        self.symbols = self.counter("symbols", "Data symbols sent through the channel")
        self.pilot_symbols = self.counter("pilot_symbols", "Pilot symbols sent")
        self.psnr_db = self.gauge("psnr_db", "Current channel PSNR in dB")
        self.edge_replies = self.counter(
            "edge_replies", "Edge replies by the replica that decoded", ("replica",)
        )
        self._edge_replies: dict[str, object] = {}  # labelled children, looked up once
        self.edge_batch_size = self.histogram(
            "edge_batch_size", "Transmissions per call to the edge", buckets=EDGE_BATCH_BUCKETS
        )

    def count_edge_reply(self, replica_id: str) -> None:
        """One more reply from edge replica ``replica_id`` ("unnamed" when it gave none)."""
        replica = replica_id or "unnamed"
        child = self._edge_replies.get(replica)
        if child is None:
            child = self._edge_replies[replica] = self.edge_replies.labels(replica=replica)
        child.inc()
