"""Artifacts of an image JSCC model: ``encoder.onnx``, ``decoder.pt``, ``manifest.json``.

The encoder graph keeps the device's contract (inputs ``x``, ``beta``, ``snr_db``; outputs
``symbols``, ``n_active``): an image model has no β, so ``beta`` is read and ignored (the
manifest's β range is [1, 1]), and every image sends all d symbols. The manifest says
``task: "reconstruction"`` and ``power: "average"`` (mean power 1 per real symbol, see
``shared/nn/image_jscc.py``); the input is pixel/255 (mean 0, std 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from shared.manifest import DECODER_NAME, ENCODER_NAME, MANIFEST_NAME, SCHEMA_VERSION, content_hash
from shared.nn.image_jscc import POWER_CONVENTION, ImageJSCC, save_image_decoder
from trainer.export import export_graph, runtime_versions

IMAGE_BETA = 1.0  # the β an image model's manifest fixes (it has no β knob)


class ImageEncoderGraph(nn.Module):
    """(x, beta, snr_db) -> symbols [N, d], n_active [N] (= d)."""

    def __init__(self, model: ImageJSCC):
        super().__init__()
        self.encoder = model.encoder
        self.d = model.symbols

    def forward(self, x, beta, snr_db):
        symbols = self.encoder(x, snr_db) + 0.0 * beta  # beta: in the contract, not used
        n_active = torch.full_like(symbols[:, 0], self.d).to(torch.int64)
        return symbols, n_active


def export_image_encoder(model: ImageJSCC, path: str | Path) -> Path:
    model = model.eval()
    example = (torch.zeros(2, *model.image_shape), torch.ones(2, 1), torch.full((2, 1), 10.0))
    return export_graph(ImageEncoderGraph(model), example, ["symbols", "n_active"], path)


def write_image_artifacts(
    model: ImageJSCC,
    dataset: str,
    snr_range: tuple[float, float],
    out_dir: str | Path,
    metrics: dict | None = None,
) -> dict:
    """Write encoder.onnx, decoder.pt and manifest.json into ``out_dir``; return the manifest."""

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder = export_image_encoder(model, out_dir / ENCODER_NAME)
    decoder = out_dir / DECODER_NAME
    save_image_decoder(model, decoder)
    channels = model.image_shape[0]
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "model_id": content_hash([encoder, decoder]),
        "task": "reconstruction",
        "dataset": dataset,
        "input": {
            "shape": list(model.image_shape),
            "mean": [0.0] * channels,
            "std": [1.0] * channels,
            "normalisation": "pixel / 255 (images in [0, 1])",
        },
        "class_names": [],
        "d": model.symbols,
        "quantizer": None,
        "variable_length": False,
        "beta_range": [IMAGE_BETA, IMAGE_BETA],
        "default_beta": IMAGE_BETA,
        "snr_db_range": list(snr_range),
        "power": POWER_CONVENTION,
        "encoder": {
            "arch": "image-jscc",
            "adaptation": model.config["adaptation"],
            "filters": model.config["filters"],
            "bandwidth_ratio": model.ratio,
            "transmits": "d real symbols, mean power 1 per symbol (I/Q pairs)",
            "outputs": ["symbols", "n_active"],
        },
        "target": None,
        "metrics": metrics or {},
        "versions": runtime_versions(),
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return manifest
