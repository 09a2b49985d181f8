"""Evaluation of K-device co-inference through the device/edge inference path (QML-IB Fig. 2).

Each link's encoder runs its inference path on its view (mean, hard quantizer), AWGN at that
link's PSNR is added, a missing link's features are zeroed and the fusion decoder classifies.
The averaging baseline (no joint training) runs K single-view models, each with its own
classifier, and averages their class probabilities over the links that arrived.
Points are averaged over ``draws`` seeded noise draws.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from shared.nn.channel import awgn_sent, noise_var_from_snr
from shared.nn.model import CoInferenceModel
from shared.nn.multi_link import MultiLinkModel
from shared.views import View
from trainer.dataset import Dataset

BATCH = 2500


def view_dataset(data: Dataset, view: View) -> Dataset:
    """The data set as one device sees it: every image cropped to ``view``."""
    x_train, x_test = view.crop(data.x_train), view.crop(data.x_test)
    return replace(
        data,
        name=f"{data.name}[view {view.top},{view.left} {view.height}x{view.width}]",
        x_train=np.ascontiguousarray(x_train),
        x_test=np.ascontiguousarray(x_test),
        input_shape=(data.input_shape[0], view.height, view.width),
    )


def _per_link(values, k: int) -> list[float]:
    values = [float(values)] * k if np.isscalar(values) else [float(v) for v in values]
    if len(values) != k:
        raise ValueError(f"need one value per link ({k}), got {len(values)}")
    return values


def _noisy(sent: dict, snr_db: float, gen: torch.Generator) -> torch.Tensor:
    """One link's received symbols: AWGN at ``snr_db`` on what ``encode`` sent."""
    sigma = float(noise_var_from_snr(torch.tensor(snr_db)).sqrt())
    return awgn_sent(sent["symbols"], sigma, sent.get("n_active"), gen)


@torch.no_grad()
def fused_probabilities(model: MultiLinkModel, x, beta, snr_db, present, gen) -> torch.Tensor:
    """Fusion decoder's class probabilities [N, C] for one noise draw (x: full images)."""
    k, n = model.n_links, len(x)
    b = torch.tensor([beta], dtype=torch.float32).expand(n, k)
    s = torch.tensor([snr_db], dtype=torch.float32).expand(n, k)
    p = torch.tensor([present], dtype=torch.float32).expand(n, k)
    sent = model.encode(torch.from_numpy(x), b, s)
    received = torch.stack(
        [_noisy(out, snr, gen) for out, snr in zip(sent, snr_db, strict=True)], dim=1
    )
    return torch.softmax(model.decode(received, b, s, p), dim=1)


@torch.no_grad()
def averaged_probabilities(models, views, x, beta, snr_db, present, gen) -> torch.Tensor:
    """Averaging baseline: mean of the present single-view models' probabilities [N, C]."""
    total, count = 0.0, 0
    for model, view, b_k, s_k, here in zip(models, views, beta, snr_db, present, strict=True):
        if not here:
            continue
        n = len(x)
        bt, st = torch.full((n, 1), b_k), torch.full((n, 1), s_k)
        sent = model.encode(torch.from_numpy(view.crop(x)), bt, st)
        total = total + torch.softmax(model.decode(_noisy(sent, s_k, gen), bt, st), dim=1)
        count += 1
    return total / count


def accuracy(predict, data: Dataset, n: int | None, draws: int, seed: int) -> dict:
    """Accuracy of ``predict(x_batch, gen) -> probabilities`` on the first n test images."""
    x, y = data.x_test[:n], data.y_test[:n]
    scores = []
    for draw in range(draws):
        gen = torch.Generator().manual_seed(seed + draw)
        labels = [predict(x[i : i + BATCH], gen).argmax(1).numpy() for i in range(0, len(x), BATCH)]
        scores.append(float((np.concatenate(labels) == y).mean()))
    return {"accuracy": float(np.mean(scores)), "std": float(np.std(scores)), "draws": draws}


def evaluate_fused(model, data, beta, snr_db, present=None, n=None, draws=1, seed=0) -> dict:
    """Joint model at per-link β (linear) and PSNR (dB), scalars or one per link."""
    k = model.n_links
    beta, snr_db = _per_link(beta, k), _per_link(snr_db, k)
    present = [True] * k if present is None else [bool(p) for p in present]
    out = accuracy(
        lambda xb, gen: fused_probabilities(model, xb, beta, snr_db, present, gen),
        data, n, draws, seed,
    )  # fmt: skip
    return out | {"symbols_per_link": model.config.d, "present": present}


def evaluate_averaged(models, views, data, beta, snr_db, present=None, n=None, draws=1, seed=0):
    """Averaging baseline at per-link β and PSNR."""
    k = len(models)
    beta, snr_db = _per_link(beta, k), _per_link(snr_db, k)
    present = [True] * k if present is None else [bool(p) for p in present]
    return accuracy(
        lambda xb, gen: averaged_probabilities(models, views, xb, beta, snr_db, present, gen),
        data, n, draws, seed,
    )  # fmt: skip


def evaluate_single(model: CoInferenceModel, data, beta, snr_db, n=None, draws=1, seed=0):
    """A single-device model (the whole image) through the same noise and scoring."""
    return evaluate_averaged([model], [View(0, 0, *data.input_shape[1:])], data, beta,
                             snr_db, None, n, draws, seed)  # fmt: skip
