"""Settings of the edge server: CLI flags with EDGE_* environment fallbacks."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.service.settings import GrpcServiceSettings, StrictBool, optional
from shared.service.settings import parse_settings as _parse


class EdgeSettings(GrpcServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EDGE_")
    prog: ClassVar[str] = "python -m edge_server"
    description: ClassVar[str] = "gRPC edge decoder with adaptive batching."

    model: Path = Field(Path("artifacts/quick"), description="model folder artifacts/<name>")
    port: int = Field(50052, ge=0, le=65535, description="gRPC port")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="torch device (auto: CUDA when available)"
    )
    torch_threads: int = Field(
        1,
        ge=1,
        description="PyTorch intra-op threads of the decoder; the batcher, not OpenMP, gives "
        "the parallelism, and more threads than free cores stall each batch at the barrier",
    )
    max_batch_size: int = Field(32, ge=1, description="requests per decoder call, 1 = no batching")
    max_queue_delay_us: float = Field(
        0.0,
        ge=0,
        description="added wait for a batch to fill, microseconds; 0 = none: an idle "
        "decoder runs a request at once",
    )
    inline_decode_max: int = Field(
        0,
        ge=0,
        description="decode a batch of at most this many requests on the event loop instead "
        "of the decoder thread when the decoder runs on the CPU (no thread hop and hand-back; "
        "a small model decodes a few requests in microseconds); 0 = always the thread",
    )
    decoder_trace: StrictBool = Field(
        False,
        description="run the decoder as a frozen TorchScript trace (fewer Python calls per "
        "batch); kept only if it matches the eager model on test batches at start-up",
    )
    decoder_snr: Literal["transmission", "csi"] = Field(
        "transmission", description="decoder SNR input: the encoder's or the channel's (csi)"
    )
    group_timeout_s: float = Field(
        0.5,
        gt=0,
        description="multi-link model: decode a group without its missing links "
        "this long after its first link arrived, s",
    )
    probe_interval_s: float = Field(
        5.0, ge=0.01, description="while the decoder cannot run, re-probe it this often, s"
    )
    max_connection_age_s: float = Field(
        0.0,
        ge=0,
        description="close each client connection after this long (GOAWAY; calls in flight "
        "finish) so that clients balancing over a DNS name re-resolve it and find replicas "
        "added later; 0 = never",
    )
    model_module: optional(str) = Field(
        None,
        description="modules to import before loading the model, comma-separated: each "
        "registers its own model families with shared.nn.zoo.register (docs/OWN_MODEL.md)",
    )
    replica_id: optional(str) = Field(
        None, description="name of this replica in replies and GetInfo (none = HOSTNAME:PORT)"
    )

    def server_options(self) -> list[tuple[str, int]]:
        """gRPC server options from these settings (the maximum connection age)."""
        if not self.max_connection_age_s:
            return []
        return [
            ("grpc.max_connection_age_ms", max(1, round(self.max_connection_age_s * 1000))),
            ("grpc.max_connection_age_grace_ms", round(max(self.grace_s, 1.0) * 1000)),
        ]

    def model_modules(self) -> list[str]:
        """The modules of ``model_module``, in order."""
        return [name.strip() for name in (self.model_module or "").split(",") if name.strip()]

    def replica_name(self) -> str:
        """``replica_id``, or this host's name and port (unique per compose replica)."""
        return self.replica_id or f"{socket.gethostname()}:{self.port}"


def parse_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> EdgeSettings:
    """Flags over EDGE_<NAME> variables over defaults; a bad value exits with status 2."""
    return _parse(EdgeSettings, argv, env)
