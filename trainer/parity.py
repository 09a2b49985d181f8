"""ONNX Runtime encoder against the PyTorch encoder on the same inputs (issue: parity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from shared.manifest import ENCODER_NAME
from trainer.dataset import Dataset
from trainer.evaluate import decode_dataset, encode_dataset, score


def run_onnx_encoder(model_dir: str | Path, x: np.ndarray, beta: float, snr_db: float, batch=2500):
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(Path(model_dir) / ENCODER_NAME), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    parts = {name: [] for name in names}
    for start in range(0, len(x), batch):
        xb = x[start : start + batch]
        n = len(xb)
        feed = {
            "x": xb,
            "beta": np.full((n, 1), beta, np.float32),
            "snr_db": np.full((n, 1), snr_db, np.float32),
        }
        for name, value in zip(names, session.run(None, feed), strict=True):
            parts[name].append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


@torch.no_grad()
def torch_levels(model, x: np.ndarray, beta: float, snr_db: float, batch: int = 2500):
    """Level indices from the model's own inference path (``model.encode``)."""
    parts = []
    for start in range(0, len(x), batch):
        xb = torch.from_numpy(x[start : start + batch])
        n = len(xb)
        out = model.encode(xb, torch.full((n, 1), beta), torch.full((n, 1), snr_db))
        parts.append(out["levels"])
    return torch.cat(parts).numpy()


def parity(model, model_dir, data: Dataset, beta: float, snr_db: float, seed: int = 7) -> dict:
    """Fraction of equal level indices (or symbols within 1e-5) and the accuracy gap."""
    ort_out = run_onnx_encoder(model_dir, data.x_test, beta, snr_db)
    torch_symbols, torch_active = encode_dataset(model, data.x_test, beta, snr_db)
    result = {
        "n_elements": int(torch_symbols.numel()),
        "n_active_equal": float((ort_out["n_active"] == torch_active.numpy()).mean()),
        "max_symbol_abs_diff": float(np.abs(ort_out["symbols"] - torch_symbols.numpy()).max()),
    }
    if "levels" in ort_out:
        levels = torch_levels(model, data.x_test, beta, snr_db)
        result["level_index_agreement"] = float((ort_out["levels"] == levels).mean())
    else:
        result["symbol_agreement"] = float(
            (np.abs(ort_out["symbols"] - torch_symbols.numpy()) <= 1e-5).mean()
        )
    acc_torch = score(
        decode_dataset(model, torch_symbols, beta, snr_db, seed, n_active=torch_active),
        data,
        data.y_test,
    )
    ort_symbols = torch.from_numpy(ort_out["symbols"])
    ort_active = torch.from_numpy(np.asarray(ort_out["n_active"]))
    acc_ort = score(
        decode_dataset(model, ort_symbols, beta, snr_db, seed, n_active=ort_active),
        data,
        data.y_test,
    )
    result.update(
        {"metric_torch": acc_torch, "metric_onnx": acc_ort, "metric_gap": acc_ort - acc_torch}
    )
    return result
