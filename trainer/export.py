"""Export both halves as the artifacts the services load (DESIGN §5, docs/ARCHITECTURE.md)."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.manifest import (
    DECODER_NAME,
    ENCODER_NAME,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    content_hash,
    start_beta,
)
from shared.nn.model import CoInferenceModel
from shared.nn.multi_link import MultiLinkModel
from shared.nn.zoo import config_family
from trainer.dataset import Dataset

ONNX_OPSET = 18


class EncoderGraph(nn.Module):
    """The device path as a graph: (x, beta, snr_db) -> symbols, n_active[, levels]."""

    def __init__(self, model: CoInferenceModel):
        super().__init__()
        self.model = model

    def forward(self, x, beta, snr_db):
        out = self.model.encode(x, beta, snr_db)
        if "levels" in out:
            return out["symbols"], out["n_active"], out["levels"]
        return out["symbols"], out["n_active"]


def runtime_versions() -> dict:
    """The library versions an export was made with, for the manifest's ``versions``."""
    import onnxruntime

    return {
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "onnx_opset": str(ONNX_OPSET),
    }


def output_names(model: CoInferenceModel) -> list[str]:
    names = ["symbols", "n_active"]
    return names + ["levels"] if getattr(model, "quantizer", None) is not None else names


def export_encoder(model: CoInferenceModel, path: str | Path) -> Path:
    """encoder.onnx: opset 18, one file, dynamic batch (torch.onnx dynamo exporter)."""
    path = Path(path)
    model = model.eval()
    n = 2
    example = (
        torch.zeros(n, *model.config.input_shape),
        torch.full((n, 1), 1e-3),
        torch.full((n, 1), 10.0),
    )
    return export_graph(EncoderGraph(model), example, output_names(model), path)


def export_graph(graph: nn.Module, example: tuple, outputs: list[str], path: str | Path) -> Path:
    """``graph`` (inputs x, beta, snr_db) as one ONNX file at ``path``: opset 18, a dynamic
    batch, the torch.onnx dynamo exporter; what every device encoder is exported with."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    dynamic = {"x": {0: batch}, "beta": {0: batch}, "snr_db": {0: batch}}
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            example,
            input_names=["x", "beta", "snr_db"],
            output_names=outputs,
            dynamic_shapes=dynamic,
            dynamo=True,
            external_data=False,
            opset_version=ONNX_OPSET,
            verbose=False,
        )
    program.save(str(path), external_data=False)
    return Path(path)


def link_encoder_name(k: int) -> str:
    """The ONNX encoder of device/link k of a multi-link model."""
    return f"encoder-link{k}.onnx"


def export_encoders(model, out_dir: Path) -> list[Path]:
    """encoder.onnx, or one encoder-link<k>.onnx per view of a multi-link model (each is
    that link's ``CoInferenceModel.encode`` on its view's input shape)."""
    if isinstance(model, MultiLinkModel):
        return [export_encoder(link, out_dir / link_encoder_name(k))
                for k, link in enumerate(model.links)]  # fmt: skip
    return [export_encoder(model, out_dir / ENCODER_NAME)]


def quantizer_table(model: CoInferenceModel) -> dict | None:
    if getattr(model, "quantizer", None) is None:
        return None
    with torch.no_grad():
        return {
            "bits": model.config.bits,
            "levels": model.quantizer.levels().tolist(),
            "breakpoints": model.quantizer.breakpoints().tolist(),
        }


def links_section(model: MultiLinkModel, files: list[Path], beta_range, snr_range) -> dict:
    """The manifest's ``links``: K, the views and, per link, its encoder, view, quantizer
    table and the β and PSNR ranges it was trained over."""
    per_link = [
        {
            "index": k,
            "encoder": path.name,
            "view": view.to_dict(),
            "input_shape": list(link.config.input_shape),
            "d": link.config.d,
            "quantizer": quantizer_table(link),
            "beta_range": list(beta_range),
            "snr_db_range": list(snr_range),
        }
        for k, (link, view, path) in enumerate(zip(model.links, model.views, files, strict=True))
    ]
    return {"n_links": model.n_links, "overlap": model.config.overlap, "links": per_link}


def save_decoder(model: CoInferenceModel, path: str | Path) -> Path:
    """decoder.pt: config + the decoder's weights only (what the edge needs)."""
    state = {k: v for k, v in model.state_dict().items() if k.startswith("decoder.")}
    torch.save({"config": model.config.to_dict(), "state_dict": state}, path)
    return Path(path)


def write_artifacts(
    model: CoInferenceModel,
    data: Dataset,
    beta_range: tuple[float, float],
    snr_range: tuple[float, float],
    out_dir: str | Path,
    metrics: dict | None = None,
    extra: dict | None = None,
    default_beta: float | None = None,
) -> dict:
    """Write encoder.onnx, decoder.pt and manifest.json into out_dir; return the manifest.

    ``default_beta`` (linear, inside ``beta_range``) is the device's start-up beta; None
    writes :func:`shared.manifest.start_beta` of the range."""
    if default_beta is None:
        default_beta = start_beta(beta_range)
    elif not beta_range[0] <= default_beta <= beta_range[1]:
        raise ValueError(f"default_beta {default_beta:g} is outside the trained beta range "
                         f"[{beta_range[0]:g}, {beta_range[1]:g}]")  # fmt: skip
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_paths = export_encoders(model, out_dir)
    decoder_path = save_decoder(model, out_dir / DECODER_NAME)
    multi = isinstance(model, MultiLinkModel)
    # a multi-link model: link 0's table here, every link's in "multi_link"
    quantizer = quantizer_table(model.links[0] if multi else model)
    if multi:
        extra = {"multi_link": links_section(model, encoder_paths, beta_range, snr_range),
                 **(extra or {})}  # fmt: skip

    manifest = {
        "schema_version": SCHEMA_VERSION,
        "model_id": content_hash([*encoder_paths, decoder_path]),
        "family": config_family(model.config),  # shared/nn/zoo.py
        "task": data.task,
        "dataset": data.name,
        "input": {
            "shape": list(data.input_shape),
            "mean": list(data.mean),
            "std": list(data.std),
            "normalisation": "(pixel / 255 - mean) / std per channel",
        },
        "class_names": list(data.class_names),
        "d": model.config.d,
        "quantizer": quantizer,
        "variable_length": model.config.variable_length,
        "beta_range": list(beta_range),
        "default_beta": float(default_beta),
        "snr_db_range": list(snr_range),
        "encoder": {
            "arch": model.config.arch,
            "head": model.config.head,
            "prior": model.config.prior,
            "transmits": "mu (the mean), peak <= 1"
            if model.config.head == "gaussian"
            else "gamma * tanh(.), peak <= 1",
            "outputs": output_names(model.links[0] if multi else model),
        },
        "target": {"unit": "ns", "mean": data.target_mean, "std": data.target_std}
        if data.task == "regression"
        else None,
        "metrics": metrics or {},
        "versions": runtime_versions(),
        **(extra or {}),
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return manifest
