"""Device settings: CLI flags with ``DEVICE_*`` environment-variable fallbacks (DESIGN §9).

Built like the channel's and the edge's (:mod:`shared.service.settings`): one frozen object
per process, logged at start-up; a bad value is a usage error (exit 2, one line). Units:
seconds for ``deadline_s``, bytes for ``max_upload_bytes``, dB for ``snr_db``, linear for
``beta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.service.errors import MAX_BATCH_ITEMS
from shared.service.settings import (
    AdminTokenSettings,
    OptionalBool,
    client_tls_field,
    optional,
    parse_bool,
)
from shared.service.settings import parse_settings as _parse

__all__ = ["DeviceSettings", "parse_bool", "parse_settings"]

DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MB


class DeviceSettings(AdminTokenSettings):
    """The admin token (if any) guards ``PUT /v1/knobs`` and ``PUT /v1/channel/psnr``."""

    model_config = SettingsConfigDict(env_prefix="DEVICE_")
    prog: ClassVar[str] = "python -m device"
    description: ClassVar[str] = "Device process: ONNX encoder + live knobs + HTTP front."

    model: Path = Field(description="model folder written by the trainer")
    channel: str = Field("127.0.0.1:50051", description="channel proxy HOST:PORT (gRPC)")
    host: str = Field("127.0.0.1", description="HTTP bind address")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port")
    deadline_s: float = Field(
        2.0, gt=0, description="deadline of a request's gRPC calls, s (flows to channel and edge)"
    )
    transmit_batch: int = Field(
        32,
        ge=1,
        le=MAX_BATCH_ITEMS,
        description="most transmissions per call to the channel: requests that arrive while "
        "--transmit-in-flight calls are out go together (1 = one call per request)",
    )
    transmit_in_flight: int = Field(
        2, ge=1, description="calls to the channel out at once before requests wait to batch"
    )
    max_upload_bytes: int = Field(
        DEFAULT_MAX_UPLOAD_BYTES, gt=0, description="request bodies above this get HTTP 413"
    )
    beta: optional(float) = Field(None, description="initial beta, linear (none = model default)")
    snr_mode: Literal["feedback", "manual"] = Field(
        "feedback", description="feedback: SNR from the channel's CSI; manual: --snr-db"
    )
    snr_db: optional(float) = Field(
        None, description="manual SNR the encoder assumes, dB (none = middle of the range)"
    )
    variable_length: OptionalBool = Field(
        None, description="send only the active prefix (none = on for VL models)"
    )
    state_file: optional(Path) = Field(
        None,
        description="JSON file the knobs are saved to on every change and restored from at "
        "start-up, over --beta/--snr-mode/--snr-db/--variable-length (none = not kept)",
    )
    link_index: optional(int) = Field(
        None,
        description="multi-link model: this device's link and view, 0..K-1 (it crops its own "
        "view from the full image and sends over its own link)",
    )
    ort_threads: int = Field(1, ge=0, description="ONNX Runtime intra-op threads, 0 = default")
    compute_threads: int = Field(
        2, ge=1, description="threads for image decode and encoding (off the event loop)"
    )
    data_dir: optional(Path) = Field(
        None,
        description="Fashion-MNIST IDX folder for the web page's random test images "
        "(none = /usr/share/datasets/fashion-mnist)",
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="max gRPC message size to/from the channel, bytes"
    )
    http_body_timeout_s: float = Field(
        30.0, gt=0, description="a request body not received within this gets HTTP 408, s"
    )
    http_keepalive_s: float = Field(
        5.0, gt=0, description="idle keep-alive connections are closed after this, s"
    )
    channel_tls_ca: optional(Path) = client_tls_field("ca", "channel")
    channel_tls_cert: optional(Path) = client_tls_field("cert", "channel")
    channel_tls_key: optional(Path) = client_tls_field("key", "channel")

    @model_validator(mode="after")
    def _check_channel_tls(self) -> DeviceSettings:
        self.check_client_tls("TLS to the channel", "channel")
        return self

    def channel_credentials(self):
        """gRPC credentials of the calls to the channel (None = plaintext)."""
        return self.client_credentials("channel")


def parse_settings(argv: Sequence[str] | None = None, env=None) -> DeviceSettings:
    """Parse CLI flags (falling back to DEVICE_* variables) into settings; exit 2 if bad."""
    return _parse(DeviceSettings, argv, env)
