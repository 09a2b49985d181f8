"""Decoder runtime for the edge server: load a model folder, decode received symbols.

The API is fixed in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from shared.manifest import DECODER_NAME, ManifestError, load_manifest
from shared.nn.model import CoInferenceModel
from shared.nn.multi_link import MultiLinkModel

DEVICES = ("auto", "cpu", "cuda")


def pick_device(device: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' requested but CUDA is not available")
    return device


def load_checkpoint(model_dir: str | Path, map_location="cpu") -> CoInferenceModel:
    """The model with its decoder weights from ``decoder.pt`` (what the edge needs)."""
    path = Path(model_dir) / DECODER_NAME
    try:
        return CoInferenceModel.from_checkpoint(path, map_location, decoder_only=True)
    except (FileNotFoundError, ValueError) as exc:
        raise ManifestError(str(exc)) from exc


class DecoderRuntime:
    """(received [N, d], beta [N], snr_db [N]) -> probabilities [N, C] or values [N, 1]."""

    def __init__(self, model_dir: str | Path, device: str = "auto"):
        self.manifest = load_manifest(model_dir)
        self.device = pick_device(device)
        self.model = load_checkpoint(model_dir).to(self.device)
        self.config = self.model.config

    @torch.inference_mode()
    def __call__(self, received: np.ndarray, beta: np.ndarray, snr_db: np.ndarray) -> np.ndarray:
        received = np.asarray(received, dtype=np.float32)
        if received.ndim != 2 or received.shape[1] != self.config.d:
            raise ValueError(f"received must be [N, {self.config.d}], got {received.shape}")
        y = torch.from_numpy(received).to(self.device)
        b = torch.as_tensor(np.asarray(beta, np.float32).reshape(-1, 1), device=self.device)
        s = torch.as_tensor(np.asarray(snr_db, np.float32).reshape(-1, 1), device=self.device)
        out = self.model.decode(y, b, s)
        if self.config.task == "classification":
            return torch.softmax(out, dim=1).float().cpu().numpy()
        value = out * self.config.target_std + self.config.target_mean
        return value.float().cpu().numpy()


class MultiLinkDecoderRuntime:
    """The fusion decoder of a K-link model (QML-IB eq. 15): (received [N, K, d], beta,
    snr_db, present [N, K]) -> probabilities [N, C]; a missing link's row is ignored."""

    def __init__(self, model_dir: str | Path, device: str = "auto"):
        self.manifest = load_manifest(model_dir)
        self.device = pick_device(device)
        path = Path(model_dir) / DECODER_NAME
        try:
            self.model = MultiLinkModel.from_checkpoint(path, "cpu", decoder_only=True)
        except (FileNotFoundError, ValueError) as exc:
            raise ManifestError(str(exc)) from exc
        self.model = self.model.to(self.device)
        self.config = self.model.config

    @torch.inference_mode()
    def __call__(self, received, beta, snr_db, present) -> np.ndarray:
        k, d = self.config.n_links, self.config.d
        received = np.asarray(received, dtype=np.float32)
        if received.ndim != 3 or received.shape[1:] != (k, d):
            raise ValueError(f"received must be [N, {k}, {d}], got {received.shape}")
        tensors = [torch.as_tensor(np.asarray(a, np.float32).reshape(-1, k), device=self.device)
                   for a in (beta, snr_db, present)]  # fmt: skip
        out = self.model.decode(torch.from_numpy(received).to(self.device), *tensors)
        return torch.softmax(out, dim=1).float().cpu().numpy()


class ImageDecoderRuntime:
    """The image JSCC decoder: (received [N, d], beta [N] (unused), snr_db [N]) ->
    reconstructions [N, C·H·W] in [0, 1], flattened C-major (shape in the manifest)."""

    def __init__(self, model_dir: str | Path, device: str = "auto"):
        from shared.nn.image_jscc import load_image_decoder

        self.manifest = load_manifest(model_dir)
        self.device = pick_device(device)
        try:
            self.model = load_image_decoder(Path(model_dir) / DECODER_NAME).to(self.device)
        except (FileNotFoundError, ValueError) as exc:
            raise ManifestError(str(exc)) from exc
        self.d = self.model.symbols

    @torch.inference_mode()
    def __call__(self, received: np.ndarray, beta: np.ndarray, snr_db: np.ndarray) -> np.ndarray:
        received = np.asarray(received, dtype=np.float32)
        if received.ndim != 2 or received.shape[1] != self.d:
            raise ValueError(f"received must be [N, {self.d}], got {received.shape}")
        y = torch.from_numpy(received).to(self.device)
        s = torch.as_tensor(np.asarray(snr_db, np.float32).reshape(-1, 1), device=self.device)
        return self.model.decoder(y, s).flatten(1).float().cpu().numpy()


def load_decoder(
    model_dir: str | Path, device: str = "auto"
) -> DecoderRuntime | MultiLinkDecoderRuntime | ImageDecoderRuntime:
    """The edge's decoder for the model folder: single-device, multi-link fusion, or image
    reconstruction."""
    manifest = load_manifest(model_dir)
    if manifest.task == "reconstruction":
        return ImageDecoderRuntime(model_dir, device)
    if manifest.n_links > 1:
        return MultiLinkDecoderRuntime(model_dir, device)
    return DecoderRuntime(model_dir, device)
