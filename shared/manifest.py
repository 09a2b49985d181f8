"""The artifact manifest (DESIGN §5): what a model folder holds and how to read it.

Every service reads ``artifacts/<model>/manifest.json`` through :func:`load_manifest` and
nothing else of the trainer's. Device and edge refuse to pair with a different model id.
A manifest names its ``schema_version``; one this code does not read is refused.
``default_beta`` is the device's start-up beta; the exporter writes it (``trainer train
--default-beta``, else :func:`start_beta` of the trained range). It is optional on read (older
manifests lack it): without it the device uses :func:`start_beta` itself.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.views import View

MANIFEST_NAME = "manifest.json"
ENCODER_NAME = "encoder.onnx"
DECODER_NAME = "decoder.pt"
SCHEMA_VERSION = 1
FALLBACK_BETA = 1e-3  # the start-up beta when it lies in the trained range
TASKS = ("classification", "regression", "reconstruction")
# How the encoder's symbols use the channel's power (the manifest's "power"; absent = peak):
# "peak": amplitude <= 1 per real symbol (the task models; PSNR = 10·log10(1/σ²));
# "average": mean power 1 per real symbol over one transmission (the image model; SNR =
# 10·log10(1/σ²)). σ² is the noise variance per real dimension in both.
POWER_CONVENTIONS = ("peak", "average")


def start_beta(beta_range: tuple[float, float] | list[float]) -> float:
    """The start-up beta a model without a chosen one gets: 1e-3 when it lies in
    ``beta_range``, else the range's geometric middle (linear beta)."""
    lo, hi = float(beta_range[0]), float(beta_range[1])
    return FALLBACK_BETA if lo <= FALLBACK_BETA <= hi else math.sqrt(lo * hi)


class ManifestError(ValueError):
    """The model folder is missing, incomplete or inconsistent."""


@dataclass(frozen=True)
class Manifest:
    model_id: str
    task: str  # "classification" | "regression" | "reconstruction"
    dataset: str
    input_shape: tuple[int, ...]  # (C, H, W) or (L,) for 1-D inputs
    input_mean: tuple[float, ...]  # per channel, applied to pixels scaled to [0, 1]
    input_std: tuple[float, ...]
    class_names: tuple[str, ...]
    d: int  # feature dimension = max symbols per sample
    bits: int | None  # quantizer bits, None = no quantizer
    levels: tuple[float, ...] | None  # 2^bits amplitudes in [-1, 1], ascending
    breakpoints: tuple[float, ...] | None  # 2^bits - 1 breakpoints, ascending
    variable_length: bool
    beta_range: tuple[float, float]
    snr_db_range: tuple[float, float]
    default_beta: float | None = None  # optional start-up beta (linear), inside beta_range
    encoder: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def power(self) -> str:
        """The symbols' power convention (:data:`POWER_CONVENTIONS`); "peak" when absent."""
        return str(self.raw.get("power") or "peak")

    @property
    def n_links(self) -> int:
        """K devices of a multi-link (QML-IB) model; 1 for a single-device model."""
        return int((self.raw.get("multi_link") or {}).get("n_links", 1))

    def link(self, index: int) -> dict:
        """Link ``index``'s entry of a multi-link manifest: encoder file, view, input shape."""
        if not 0 <= index < self.n_links or self.n_links == 1:
            raise ValueError(f"link index {index} outside 0..{self.n_links - 1} of this model")
        return self.raw["multi_link"]["links"][index]

    def view(self, index: int) -> View:
        """The window link ``index`` crops from the full input."""
        return View(**self.link(index)["view"])

    def check_beta(self, beta: float) -> None:
        """Raise ValueError when beta is not a positive number inside the trained range."""
        lo, hi = self.beta_range
        if not (beta > 0 and lo * (1 - 1e-6) <= beta <= hi * (1 + 1e-6)):
            raise ValueError(f"beta={beta} outside the trained range [{lo:g}, {hi:g}]")

    def check_snr_db(self, snr_db: float) -> None:
        """Raise ValueError when the SNR (dB) is outside the trained range."""
        lo, hi = self.snr_db_range
        if not (lo - 1e-9 <= snr_db <= hi + 1e-9):
            raise ValueError(f"snr_db={snr_db} outside the trained range [{lo:g}, {hi:g}] dB")


def _check_links(manifest: Manifest, path: Path) -> None:
    links = manifest.raw["multi_link"].get("links")
    if not isinstance(links, list) or len(links) != manifest.n_links:
        raise ManifestError(f"{path}: multi_link lists {len(links or [])} links, not n_links")
    _, height, width = manifest.input_shape
    for k, link in enumerate(links):
        try:
            view = View(**link["view"])
            encoder = str(link["encoder"])
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"{path}: multi_link link {k} is malformed: {exc!r}") from exc
        inside = view.top >= 0 and view.left >= 0 and view.top + view.height <= height
        if not (inside and view.left + view.width <= width) or "/" in encoder:
            raise ManifestError(f"{path}: multi_link link {k}: bad view or encoder name")


def content_hash(paths: list[Path]) -> str:
    """Model id: the first 16 hex digits of sha256 over the given files, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def load_manifest(model_dir: str | Path) -> Manifest:
    """Read and validate ``model_dir/manifest.json``; raise ManifestError with a clear message."""
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(
            f"no {MANIFEST_NAME} in {model_dir}: train a model first "
            f"(python -m trainer train --quick --out {model_dir})"
        )
    try:
        raw = json.loads(path.read_text())
    except (ValueError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"{path} is malformed: expected a JSON object")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"{path} has schema_version {version!r}; this code reads schema_version "
            f"{SCHEMA_VERSION}: export the model again with this version's trainer "
            f"(python -m trainer train ... --out {model_dir})"
        )
    try:
        default_beta = raw.get("default_beta")
        quant = raw.get("quantizer") or None
        manifest = Manifest(
            model_id=str(raw["model_id"]),
            task=str(raw["task"]),
            dataset=str(raw["dataset"]),
            input_shape=tuple(int(v) for v in raw["input"]["shape"]),
            input_mean=tuple(float(v) for v in raw["input"]["mean"]),
            input_std=tuple(float(v) for v in raw["input"]["std"]),
            class_names=tuple(str(v) for v in raw.get("class_names", [])),
            d=int(raw["d"]),
            bits=int(quant["bits"]) if quant else None,
            levels=tuple(float(v) for v in quant["levels"]) if quant else None,
            breakpoints=tuple(float(v) for v in quant["breakpoints"]) if quant else None,
            variable_length=bool(raw["variable_length"]),
            beta_range=(float(raw["beta_range"][0]), float(raw["beta_range"][1])),
            snr_db_range=(float(raw["snr_db_range"][0]), float(raw["snr_db_range"][1])),
            default_beta=None if default_beta is None else float(default_beta),
            encoder=dict(raw.get("encoder", {})),
            metrics=dict(raw.get("metrics", {})),
            versions=dict(raw.get("versions", {})),
            raw=raw,
        )
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} is malformed: {exc!r}") from exc
    if manifest.task not in TASKS:
        raise ManifestError(f"{path}: task must be one of {TASKS}, got {manifest.task!r}")
    if manifest.power not in POWER_CONVENTIONS:
        raise ManifestError(f"{path}: power must be one of {POWER_CONVENTIONS}")
    if manifest.n_links > 1:
        _check_links(manifest, path)
    if manifest.default_beta is not None:
        try:
            manifest.check_beta(manifest.default_beta)
        except ValueError as exc:
            raise ManifestError(f"{path}: default_beta: {exc}") from None
    return manifest
