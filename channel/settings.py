"""Settings of the channel proxy: CLI flags with CHANNEL_* environment fallbacks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from channel.edge_client import check_edge_target, edge_addresses
from channel.forwarding import DEFAULT_EDGE_BATCH
from channel.profiles import (
    PROFILE_KINDS,
    FixedProfile,
    RandomWalkProfile,
    TraceProfile,
    check_psnr_db,
    parse_trace_csv,
)
from channel.streams import DEFAULT_STREAM_IN_FLIGHT
from shared.channel import DEFAULT_BAUD
from shared.fading import NO_FADING, Fading
from shared.service.errors import MAX_BATCH_ITEMS
from shared.service.settings import (
    AdminTokenSettings,
    GrpcServiceSettings,
    StrictBool,
    client_tls_field,
    optional,
)
from shared.service.settings import parse_settings as _parse


class ChannelSettings(GrpcServiceSettings, AdminTokenSettings):
    """The admin token (if any) guards SetPsnr and SetProfile; Transmit and reads stay open."""

    model_config = SettingsConfigDict(env_prefix="CHANNEL_")
    public_names: ClassVar[dict[str, str]] = {
        "psnr_db": "psnr",
        "walk_low_db": "walk_low",
        "walk_high_db": "walk_high",
        "walk_step_db": "walk_step",
        "walk_period_s": "walk_period",
    }
    prog: ClassVar[str] = "python -m channel"
    description: ClassVar[str] = (
        "AWGN channel proxy between device and edge (y = s + N(0, 10^(-PSNR/10)))."
    )

    edge: str = Field(
        "localhost:50052",
        description="edge target: HOST:PORT, dns:///HOST:PORT (every address of the name) or "
        "ipv4:HOST:PORT,HOST:PORT,... (replicas, balanced round_robin; groups by ring_hash)",
    )
    edge_health_check: StrictBool = Field(
        True, description="pick only edge replicas whose gRPC health is SERVING"
    )
    port: int = Field(50051, ge=0, le=65535, description="gRPC port")
    psnr_db: float = Field(20.0, description="PSNR for the fixed profile (start value), dB")
    profile: Literal["fixed", "random-walk", "trace"] = Field("fixed", description="PSNR profile")
    walk_low_db: float = Field(5.0, description="random walk lower bound, dB")
    walk_high_db: float = Field(25.0, description="random walk upper bound, dB")
    walk_step_db: float = Field(1.0, description="random walk step, dB")
    walk_period_s: float = Field(1.0, description="seconds between random walk steps")
    trace: optional(Path) = Field(None, description="CSV trace of time_s,psnr_db rows")
    trace_loop: StrictBool = Field(False, description="repeat the trace")
    pilots: int = Field(0, ge=0, description="pilot symbols per transmission, 0 = off")
    baud: float = Field(DEFAULT_BAUD, gt=0, description="symbols per second for air-time")
    emulate_airtime: StrictBool = Field(
        False, description="wait the modelled air-time before forwarding"
    )
    link_mode: Literal["analog", "ideal", "ldpc-qam"] = Field(
        "analog", description="link: analog symbols + AWGN, or coded bytes (ideal | ldpc-qam)"
    )
    edge_batching: StrictBool = Field(
        True,
        description="coalesce transmissions that arrive while calls to the edge are out into "
        "DecodeBatch calls (channel/forwarding.py); off: one Decode per transmission",
    )
    edge_batch: int = Field(
        DEFAULT_EDGE_BATCH, ge=1, le=MAX_BATCH_ITEMS, description="transmissions per DecodeBatch"
    )
    edge_in_flight: optional(int) = Field(
        None,
        ge=1,
        description="calls to the edge out before transmissions wait and coalesce (none: one "
        "per edge address in the target, i.e. one per replica of an ipv4: list, else 1)",
    )
    edge_batch_delay_ms: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="option: a transmission may wait this long for others to fill a "
        "DecodeBatch even while a call slot is free (0: send at once)",
    )
    deadline_s: float = Field(
        2.0, gt=0, description="deadline of the call to the edge (or less: the caller's), s"
    )
    stream_in_flight: int = Field(
        DEFAULT_STREAM_IN_FLIGHT,
        ge=1,
        le=MAX_BATCH_ITEMS,
        description="TransmitStream: items of one stream in flight before the channel stops "
        "reading it (backpressure)",
    )
    fading: Literal["none", "rayleigh", "rician"] = Field(
        "none", description="block fading on every link (shared/fading.py); none = AWGN"
    )
    k_factor: float = Field(0.0, ge=0, le=1e6, description="Rician K-factor (linear)")
    coherence: optional(int) = Field(
        None, ge=1, description="complex symbols per fading block (none = one per transmission)"
    )
    fading_csi: Literal["perfect", "ls"] = Field(
        "perfect", description="the receiver's CSI: perfect, or least squares from pilots"
    )
    fading_pilots: int = Field(1, ge=1, description="LS pilots per fading block")
    equalizer: Literal["zf", "mmse"] = Field("zf", description="equaliser under fading")
    seed: optional(int) = Field(None, description="noise RNG seed (none = fresh entropy)")
    edge_tls_ca: optional(Path) = client_tls_field("ca", "edge")
    edge_tls_cert: optional(Path) = client_tls_field("cert", "edge")
    edge_tls_key: optional(Path) = client_tls_field("key", "edge")

    @model_validator(mode="after")
    def _check(self) -> ChannelSettings:
        check_psnr_db(self.psnr_db, "--psnr")
        check_edge_target(self.edge)
        self.build_profile()  # validates walk bounds and the trace file
        self.build_fading()
        self.check_client_tls("TLS to the edge", "edge")
        return self

    def edge_calls_in_flight(self) -> int:
        """``--edge-in-flight``, or by default one per address the edge target names."""
        return self.edge_in_flight or edge_addresses(self.edge)

    def edge_credentials(self):
        """gRPC credentials of the call to the edge (None = plaintext)."""
        return self.client_credentials("edge")

    def build_fading(self) -> Fading:
        """The fading these settings describe (NO_FADING for none); ValueError naming the flag."""
        if self.fading == "none":
            if self.k_factor or self.coherence is not None:
                raise ValueError("--k-factor and --coherence need --fading rayleigh or rician")
            return NO_FADING
        if self.fading != "rician" and self.k_factor:
            raise ValueError("--k-factor applies to --fading rician only")
        return Fading(self.fading, k_factor=self.k_factor, coherence=self.coherence,
                      csi=self.fading_csi, pilots=self.fading_pilots,
                      equalizer=self.equalizer)  # fmt: skip

    def build_profile(self):
        """The PSNR profile these settings describe; raises ValueError with a clear message."""
        if self.profile == "fixed":
            return FixedProfile(self.psnr_db)
        if self.profile == "random-walk":
            return RandomWalkProfile(
                self.walk_low_db,
                self.walk_high_db,
                self.walk_step_db,
                self.walk_period_s,
                seed=self.seed,
            )
        if self.profile == "trace":
            if self.trace is None:
                raise ValueError("--profile trace needs --trace FILE (CSV of time_s,psnr_db)")
            return TraceProfile(
                parse_trace_csv(self.trace), loop=self.trace_loop, source=str(self.trace)
            )
        raise ValueError(f"profile must be one of {PROFILE_KINDS}, got {self.profile!r}")


def parse_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> ChannelSettings:
    """Flags over CHANNEL_<NAME> variables over defaults; a bad value exits with status 2."""
    return _parse(ChannelSettings, argv, env)
