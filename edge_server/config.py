"""Settings of the edge server: CLI flags with EDGE_* environment fallbacks."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_server.service import DECODER_SNR_MODES

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class EdgeSettings:
    model: Path = Path("artifacts/quick")  # model folder written by the trainer
    host: str = "0.0.0.0"
    port: int = 50052
    device: str = "auto"  # "auto" (CUDA when available) | "cpu" | "cuda"
    max_batch_size: int = 32  # 1 = batching off
    max_queue_delay_us: float = 0.0  # added wait for a batch to fill (us), 0 = adaptive only
    decoder_snr: str = "transmission"  # "transmission" (encoder's SNR) | "csi" (channel's)
    metrics_port: int = 0  # Prometheus HTTP port, 0 = off
    probe_interval_s: float = 5.0  # decoder re-probe period while not serving (s)
    grace_s: float = 5.0  # graceful shutdown period (s)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


def _bounded(value, name: str, low: float) -> None:
    if value < low:
        raise ValueError(f"{name} must be >= {low:g}, got {value}")


def parse_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> EdgeSettings:
    """Parse flags; each falls back to EDGE_<NAME> in the environment, then the default."""
    env = os.environ if env is None else env
    base = EdgeSettings()

    def default(name: str, value):
        return env.get(f"EDGE_{name}", value)

    parser = argparse.ArgumentParser(
        prog="python -m edge_server", description="gRPC edge decoder with adaptive batching."
    )
    add = parser.add_argument
    add(
        "--model",
        type=Path,
        default=default("MODEL", base.model),
        help="model folder artifacts/<name> [EDGE_MODEL]",
    )
    add("--host", default=default("HOST", base.host), help="listen address [EDGE_HOST]")
    add("--port", type=int, default=default("PORT", base.port), help="gRPC port [EDGE_PORT]")
    add(
        "--device",
        choices=DEVICES,
        default=default("DEVICE", base.device),
        help="torch device [EDGE_DEVICE]",
    )
    add(
        "--max-batch-size",
        type=int,
        default=default("MAX_BATCH_SIZE", base.max_batch_size),
        help="requests per decoder call, 1 = no batching [EDGE_MAX_BATCH_SIZE]",
    )
    add(
        "--max-queue-delay-us",
        type=float,
        default=default("MAX_QUEUE_DELAY_US", base.max_queue_delay_us),
        help="added wait for a batch to fill, microseconds; 0 = none: an idle decoder runs "
        "a request at once [EDGE_MAX_QUEUE_DELAY_US]",
    )
    add(
        "--decoder-snr",
        choices=DECODER_SNR_MODES,
        default=default("DECODER_SNR", base.decoder_snr),
        help="decoder SNR input: the encoder's (transmission) or the channel's (csi)",
    )
    add(
        "--metrics-port",
        type=int,
        default=default("METRICS_PORT", base.metrics_port),
        help="Prometheus port, 0 = off [EDGE_METRICS_PORT]",
    )
    add(
        "--probe-interval-s",
        type=float,
        default=default("PROBE_INTERVAL_S", base.probe_interval_s),
        help="while the decoder cannot run, re-probe it this often, s [EDGE_PROBE_INTERVAL_S]",
    )
    add(
        "--grace-s",
        type=float,
        default=default("GRACE_S", base.grace_s),
        help="graceful shutdown period, s [EDGE_GRACE_S]",
    )
    add(
        "--max-message-bytes",
        type=int,
        default=default("MAX_MESSAGE_BYTES", base.max_message_bytes),
        help="max gRPC message size, bytes [EDGE_MAX_MESSAGE_BYTES]",
    )
    args = parser.parse_args(argv)
    settings = EdgeSettings(**vars(args))
    try:
        _bounded(settings.max_batch_size, "--max-batch-size", 1)
        _bounded(settings.max_queue_delay_us, "--max-queue-delay-us", 0)
        _bounded(settings.probe_interval_s, "--probe-interval-s", 0.01)
        _bounded(settings.port, "--port", 0)
        if settings.device not in DEVICES:
            raise ValueError(f"--device must be one of {DEVICES}, got {settings.device!r}")
        if settings.decoder_snr not in DECODER_SNR_MODES:
            raise ValueError(f"--decoder-snr must be one of {DECODER_SNR_MODES}")
    except ValueError as exc:
        parser.error(str(exc))
    return settings
