"""Settings of the channel proxy: CLI flags with CHANNEL_* environment fallbacks."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from channel.profiles import (
    PROFILE_KINDS,
    FixedProfile,
    RandomWalkProfile,
    TraceProfile,
    check_psnr_db,
    parse_trace_csv,
)
from shared.channel import DEFAULT_BAUD

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ChannelSettings:
    edge: str = "localhost:50052"  # edge server target host:port (DNS name for round_robin)
    host: str = "0.0.0.0"
    port: int = 50051
    psnr_db: float = 20.0  # fixed profile / start value (dB)
    profile: str = "fixed"  # "fixed" | "random-walk" | "trace"
    walk_low_db: float = 5.0
    walk_high_db: float = 25.0
    walk_step_db: float = 1.0
    walk_period_s: float = 1.0
    trace: Path | None = None  # CSV of time_s,psnr_db rows
    trace_loop: bool = False
    pilots: int = 0  # pilot symbols per transmission (VL-VFE App. C), 0 = off
    baud: float = DEFAULT_BAUD  # symbols per second for the modelled air-time
    emulate_airtime: bool = False  # sleep for the modelled air-time before forwarding
    deadline_s: float = 2.0  # deadline of the forwarded Decode call (s)
    seed: int | None = None  # noise RNG seed (None = fresh entropy)
    metrics_port: int = 0  # Prometheus HTTP port, 0 = off
    workers: int = 16  # gRPC server threads
    grace_s: float = 5.0  # graceful shutdown grace period (s)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

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


def _flag(env: Mapping[str, str], name: str, default):
    return env.get(f"CHANNEL_{name}", default)


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def parse_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> ChannelSettings:
    """Parse flags; each flag falls back to CHANNEL_<NAME> in the environment, then the default."""
    env = os.environ if env is None else env
    base = ChannelSettings()
    parser = argparse.ArgumentParser(
        prog="python -m channel",
        description="AWGN channel proxy between device and edge (y = s + N(0, 10^(-PSNR/10))).",
    )
    add = parser.add_argument
    add("--edge", default=_flag(env, "EDGE", base.edge), help="edge HOST:PORT [CHANNEL_EDGE]")
    add("--host", default=_flag(env, "HOST", base.host), help="listen address [CHANNEL_HOST]")
    add("--port", type=int, default=_flag(env, "PORT", base.port), help="gRPC port [CHANNEL_PORT]")
    add(
        "--psnr",
        dest="psnr_db",
        type=float,
        default=_flag(env, "PSNR", base.psnr_db),
        help="PSNR in dB for the fixed profile [CHANNEL_PSNR]",
    )
    add(
        "--profile",
        choices=PROFILE_KINDS,
        default=_flag(env, "PROFILE", base.profile),
        help="PSNR profile [CHANNEL_PROFILE]",
    )
    add(
        "--walk-low",
        dest="walk_low_db",
        type=float,
        default=_flag(env, "WALK_LOW", base.walk_low_db),
        help="random walk lower bound, dB",
    )
    add(
        "--walk-high",
        dest="walk_high_db",
        type=float,
        default=_flag(env, "WALK_HIGH", base.walk_high_db),
        help="random walk upper bound, dB",
    )
    add(
        "--walk-step",
        dest="walk_step_db",
        type=float,
        default=_flag(env, "WALK_STEP", base.walk_step_db),
        help="random walk step, dB",
    )
    add(
        "--walk-period",
        dest="walk_period_s",
        type=float,
        default=_flag(env, "WALK_PERIOD", base.walk_period_s),
        help="seconds between steps",
    )
    add(
        "--trace",
        type=Path,
        default=_flag(env, "TRACE", base.trace),
        help="CSV trace of time_s,psnr_db rows [CHANNEL_TRACE]",
    )
    add(
        "--trace-loop",
        action="store_true",
        default=_bool(_flag(env, "TRACE_LOOP", base.trace_loop)),
        help="repeat the trace",
    )
    add(
        "--pilots",
        type=int,
        default=_flag(env, "PILOTS", base.pilots),
        help="pilot symbols per transmission, 0 = off [CHANNEL_PILOTS]",
    )
    add(
        "--baud",
        type=float,
        default=_flag(env, "BAUD", base.baud),
        help="symbols per second for air-time [CHANNEL_BAUD]",
    )
    add(
        "--emulate-airtime",
        action="store_true",
        default=_bool(_flag(env, "EMULATE_AIRTIME", base.emulate_airtime)),
        help="sleep for the modelled air-time [CHANNEL_EMULATE_AIRTIME]",
    )
    add(
        "--deadline-s",
        type=float,
        default=_flag(env, "DEADLINE_S", base.deadline_s),
        help="deadline of the call to the edge, s [CHANNEL_DEADLINE_S]",
    )
    add("--seed", type=int, default=_flag(env, "SEED", base.seed), help="noise RNG seed")
    add(
        "--metrics-port",
        type=int,
        default=_flag(env, "METRICS_PORT", base.metrics_port),
        help="Prometheus port, 0 = off [CHANNEL_METRICS_PORT]",
    )
    add(
        "--workers",
        type=int,
        default=_flag(env, "WORKERS", base.workers),
        help="gRPC server threads",
    )
    add(
        "--grace-s",
        type=float,
        default=_flag(env, "GRACE_S", base.grace_s),
        help="graceful shutdown period, s",
    )
    add(
        "--max-message-bytes",
        type=int,
        default=_flag(env, "MAX_MESSAGE_BYTES", base.max_message_bytes),
        help="max gRPC message size, bytes",
    )
    args = parser.parse_args(argv)
    try:
        settings = ChannelSettings(**{k: v for k, v in vars(args).items()})
        settings = _coerce(settings)
        _validate(settings)
    except ValueError as exc:
        parser.error(str(exc))
    return settings


def _coerce(settings: ChannelSettings) -> ChannelSettings:
    """Apply types to values that came from the environment as strings."""
    return ChannelSettings(
        edge=str(settings.edge),
        host=str(settings.host),
        port=int(settings.port),
        psnr_db=float(settings.psnr_db),
        profile=str(settings.profile),
        walk_low_db=float(settings.walk_low_db),
        walk_high_db=float(settings.walk_high_db),
        walk_step_db=float(settings.walk_step_db),
        walk_period_s=float(settings.walk_period_s),
        trace=Path(settings.trace) if settings.trace else None,
        trace_loop=_bool(settings.trace_loop),
        pilots=int(settings.pilots),
        baud=float(settings.baud),
        emulate_airtime=_bool(settings.emulate_airtime),
        deadline_s=float(settings.deadline_s),
        seed=None if settings.seed in (None, "") else int(settings.seed),
        metrics_port=int(settings.metrics_port),
        workers=int(settings.workers),
        grace_s=float(settings.grace_s),
        max_message_bytes=int(settings.max_message_bytes),
    )


def _validate(settings: ChannelSettings) -> None:
    if settings.profile not in PROFILE_KINDS:
        raise ValueError(f"profile must be one of {PROFILE_KINDS}, got {settings.profile!r}")
    check_psnr_db(settings.psnr_db, "--psnr")
    if settings.pilots < 0:
        raise ValueError(f"--pilots must be >= 0, got {settings.pilots}")
    if not settings.baud > 0:
        raise ValueError(f"--baud must be > 0 symbols/s, got {settings.baud}")
    if not settings.deadline_s > 0:
        raise ValueError(f"--deadline-s must be > 0, got {settings.deadline_s}")
    if ":" not in settings.edge:
        raise ValueError(f"--edge must be HOST:PORT, got {settings.edge!r}")
    settings.build_profile()  # validates walk bounds and the trace file
