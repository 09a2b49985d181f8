"""Device settings: CLI flags with ``DEVICE_*`` environment-variable fallbacks (DESIGN §8).

One frozen object per process, printed at start-up. Units: seconds for ``deadline_s``,
bytes for ``max_upload_bytes``, dB for ``snr_db``, linear for ``beta``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass
from pathlib import Path

ENV_PREFIX = "DEVICE_"
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MB
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(text: str | bool) -> bool:
    """'on'/'off', 'true'/'false', '1'/'0', 'yes'/'no' (case-insensitive) to bool."""
    if isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected one of {TRUE_WORDS + FALSE_WORDS}, got {text!r}")


@dataclass(frozen=True)
class DeviceSettings:
    model: Path  # model folder written by the trainer (manifest.json + encoder.onnx)
    channel: str  # HOST:PORT of the channel proxy (gRPC)
    host: str = "127.0.0.1"  # HTTP bind address
    port: int = 8080  # HTTP port
    deadline_s: float = 2.0  # deadline of every outgoing gRPC call, seconds
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES  # larger request bodies get 413
    beta: float | None = None  # initial beta (linear); None = the model's default
    snr_mode: str = "feedback"  # "feedback" | "manual"
    snr_db: float | None = None  # initial manual SNR (dB); None = middle of the trained range
    variable_length: bool | None = None  # None = on when the model supports it
    ort_threads: int = 1  # ONNX Runtime intra-op threads (0 = ORT default)
    data_dir: Path | None = None  # Fashion-MNIST IDX folder for /v1/samples/random (web page)
    log_level: str = "info"

    def describe(self) -> str:
        """One line per setting, for the start-up banner."""
        rows = [f"  {key:<17}= {value}" for key, value in asdict(self).items()]
        return "device settings:\n" + "\n".join(rows)


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name, default)


def _optional_float(text: str | None) -> float | None:
    return None if text in (None, "", "none", "None") else float(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m device",
        description="Device process: ONNX encoder + live knobs + HTTP front (FastAPI). "
        "Every flag falls back to the environment variable DEVICE_<FLAG>.",
    )
    parser.add_argument("--model", default=_env("MODEL"), help="model folder [DEVICE_MODEL]")
    parser.add_argument(
        "--channel",
        default=_env("CHANNEL", "127.0.0.1:50051"),
        help="channel proxy HOST:PORT [DEVICE_CHANNEL]",
    )
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="bind [DEVICE_HOST]")
    parser.add_argument("--port", type=int, default=int(_env("PORT", "8080")), help="HTTP port")
    parser.add_argument(
        "--deadline-s",
        type=float,
        default=float(_env("DEADLINE_S", "2.0")),
        help="deadline of every gRPC call, seconds [DEVICE_DEADLINE_S]",
    )
    parser.add_argument(
        "--max-upload-bytes",
        type=int,
        default=int(_env("MAX_UPLOAD_BYTES", str(DEFAULT_MAX_UPLOAD_BYTES))),
        help="request bodies above this get HTTP 413 [DEVICE_MAX_UPLOAD_BYTES]",
    )
    parser.add_argument(
        "--beta",
        type=_optional_float,
        default=_optional_float(_env("BETA")),
        help="initial beta, linear [DEVICE_BETA]",
    )
    parser.add_argument(
        "--snr-mode",
        choices=("feedback", "manual"),
        default=_env("SNR_MODE", "feedback"),
        help="feedback: SNR from the channel's CSI; manual: --snr-db [DEVICE_SNR_MODE]",
    )
    parser.add_argument(
        "--snr-db",
        type=_optional_float,
        default=_optional_float(_env("SNR_DB")),
        help="manual SNR the encoder assumes, dB [DEVICE_SNR_DB]",
    )
    parser.add_argument(
        "--variable-length",
        type=parse_bool,
        default=None if _env("VARIABLE_LENGTH") is None else parse_bool(_env("VARIABLE_LENGTH")),
        help="on/off: send only the active prefix (VL models) [DEVICE_VARIABLE_LENGTH]",
    )
    parser.add_argument(
        "--ort-threads",
        type=int,
        default=int(_env("ORT_THREADS", "1")),
        help="ONNX Runtime intra-op threads, 0 = ORT default [DEVICE_ORT_THREADS]",
    )
    parser.add_argument(
        "--data-dir",
        default=_env("DATA_DIR"),
        help="Fashion-MNIST IDX folder for the web page's random test images; default "
        "/usr/share/datasets/fashion-mnist [DEVICE_DATA_DIR]",
    )
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "info"))
    return parser


def settings_from_args(argv: list[str] | None = None) -> DeviceSettings:
    """Parse CLI flags (falling back to DEVICE_* variables) into settings."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("--model (or DEVICE_MODEL) is required")
    if args.deadline_s <= 0:
        parser.error(f"--deadline-s must be > 0, got {args.deadline_s}")
    if args.max_upload_bytes <= 0:
        parser.error(f"--max-upload-bytes must be > 0, got {args.max_upload_bytes}")
    return DeviceSettings(
        model=Path(args.model),
        channel=args.channel,
        host=args.host,
        port=args.port,
        deadline_s=args.deadline_s,
        max_upload_bytes=args.max_upload_bytes,
        beta=args.beta,
        snr_mode=args.snr_mode,
        snr_db=args.snr_db,
        variable_length=args.variable_length,
        ort_threads=args.ort_threads,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        log_level=args.log_level,
    )
