"""Evaluation over a β × PSNR grid through the exact device/edge inference path.

The encoder runs its inference path (``model.encode``: the mean, hard quantizer, pruned
prefix), AWGN at the test PSNR is added, and the decoder classifies. Each grid point is
averaged over ``draws`` independent noise draws. Bits per sample = n_active × bits when
quantized, n_active × 32 for float symbols.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from shared.nn.channel import awgn_sent, noise_var_from_snr
from shared.nn.model import CoInferenceModel
from trainer.dataset import Dataset

BETA_GRID = tuple(float(10 ** (e / 2)) for e in range(-10, 1))  # 1e-5 .. 1, half decades
PSNR_GRID = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
FLOAT_BITS = 32


def bits_per_symbol(model: CoInferenceModel) -> int:
    return model.config.bits or FLOAT_BITS


@torch.no_grad()
def encode_dataset(
    model, x: np.ndarray, beta: float, snr_db: float, batch: int = 2500, key: str = "symbols"
):
    """Device path over a whole array: ``model.encode``'s ``key`` output (symbols [N, d], zero
    past the prefix; or "levels", the quantizer's level indices), and n_active [N]."""
    symbols, n_active = [], []
    snr_all = torch.from_numpy(np.broadcast_to(np.float32(snr_db), (len(x),)).copy())[:, None]
    for start in range(0, len(x), batch):
        xb = torch.from_numpy(x[start : start + batch])
        n = len(xb)
        out = model.encode(xb, torch.full((n, 1), beta), snr_all[start : start + batch])
        symbols.append(out[key])
        n_active.append(out["n_active"])
    return torch.cat(symbols), torch.cat(n_active)


@torch.no_grad()
def decode_dataset(model, symbols, beta, snr_db, seed: int, batch: int = 2500, n_active=None):
    """Add AWGN at snr_db (seeded) on the sent prefix of ``n_active`` dimensions (all when
    None; zeros past it, as the edge decodes) and run the decoder; returns raw outputs [N, C]."""
    gen = torch.Generator().manual_seed(seed)
    sigma = float(noise_var_from_snr(torch.tensor(snr_db)).sqrt())
    outputs = []
    for start in range(0, len(symbols), batch):
        s = symbols[start : start + batch]
        sent = None if n_active is None else n_active[start : start + batch]
        y = awgn_sent(s, sigma, sent, gen)
        n = len(s)
        outputs.append(model.decode(y, torch.full((n, 1), beta), torch.full((n, 1), snr_db)))
    return torch.cat(outputs)


@torch.no_grad()
def decode_received(model, received: np.ndarray, beta, snr_db, batch: int = 2500):
    """The decoder over received symbols [N, d] with a decoder SNR per example (or one), dB."""
    snr_all = torch.from_numpy(np.broadcast_to(np.float32(snr_db), (len(received),)).copy())
    outputs = []
    for start in range(0, len(received), batch):
        y = torch.from_numpy(np.ascontiguousarray(received[start : start + batch]))
        n = len(y)
        outputs.append(
            model.decode(y, torch.full((n, 1), beta), snr_all[start : start + batch, None])
        )
    return torch.cat(outputs)


def evaluate_fading_point(
    model, data: Dataset, beta, snr_db, fading, feedback="average", snr_range=None, draws=3,
    n=None, seed=1234,
) -> dict:  # fmt: skip
    """Score over block fading at average ``snr_db`` (mean of ``draws`` channel draws): each
    draw fades every test example (shared.fading, the channel proxy's sampler), the encoder
    is told the ``feedback`` SNR and the decoder the receiver's instantaneous SNR, both
    clipped to ``snr_range`` (the model's trained range; none: unclipped)."""
    from shared.fading import apply, draw, feedback_snr_db

    x = data.x_test[:n] if n else data.x_test
    y = data.y_test[:n] if n else data.y_test
    lo, hi = snr_range if snr_range is not None else (-np.inf, np.inf)
    values, told_mean, heard_mean = [], [], []
    for k in range(draws):
        rng = np.random.default_rng(seed + k)
        fading_draw = draw(fading, len(x), model.config.d, snr_db, rng)
        told = np.clip(feedback_snr_db(fading_draw, feedback), lo, hi)
        heard = np.clip(fading_draw.instantaneous_snr_db(), lo, hi)
        symbols, _ = encode_dataset(model, x, beta, told)
        received = apply(symbols.numpy(), fading_draw)
        values.append(score(decode_received(model, received, beta, heard), data, y))
        told_mean.append(float(told.mean()))
        heard_mean.append(float(heard.mean()))
    return {
        "value": float(np.mean(values)),
        "std": float(np.std(values)),
        "encoder_snr_db": float(np.mean(told_mean)),
        "decoder_snr_db": float(np.mean(heard_mean)),
    }


def score(outputs: torch.Tensor, data: Dataset, targets: np.ndarray) -> float:
    """Accuracy (classification) or MSE in target units, ns^2 (regression)."""
    if data.task == "classification":
        return float((outputs.argmax(1).numpy() == targets).mean())
    pred = outputs.squeeze(1).numpy() * data.target_std + data.target_mean
    return float(np.mean((pred - targets) ** 2))


@torch.no_grad()
def rate_point(model, x: np.ndarray, y: np.ndarray, data: Dataset, beta, snr_db, seed: int):
    """The rate term the model was trained with (KL in nats per example: Hyper-VIB eq. 9,
    VL-VFE eq. 6 or QML-IB eq. 14) and the score when the encoder samples z = μ + θ·ε.

    The device sends μ, so its accuracy can stay flat in β where the model barely
    compresses; the KL shows what β actually buys.
    """
    torch.manual_seed(seed)
    kls, outputs = [], []
    for start in range(0, len(x), 2500):
        xb = torch.from_numpy(x[start : start + 2500])
        n = len(xb)
        out = model(xb, torch.full((n, 1), beta), torch.full((n, 1), snr_db), sample=True)
        kls.append(out["kl"])
        outputs.append(out["outputs"])
    return float(torch.cat(kls).mean()), score(torch.cat(outputs), data, y)


def evaluate_point(model, data: Dataset, beta, snr_db, draws=5, n=None, seed=1234) -> dict:
    """Score through the inference path (mean of ``draws`` noise draws), symbols, bits, and
    the rate: ``kl`` (nats) and ``value_sampled`` (score with z sampled, one draw)."""
    x = data.x_test[:n] if n else data.x_test
    y = data.y_test[:n] if n else data.y_test
    symbols, n_active = encode_dataset(model, x, beta, snr_db)
    values = [
        score(decode_dataset(model, symbols, beta, snr_db, seed + k, n_active=n_active), data, y)
        for k in range(draws)
    ]
    mean_active = float(n_active.float().mean())
    kl, sampled = rate_point(model, x, y, data, beta, snr_db, seed)
    return {
        "value": float(np.mean(values)),
        "std": float(np.std(values)),
        "n_active": mean_active,
        "bits": mean_active * bits_per_symbol(model),
        "kl": kl,
        "value_sampled": sampled,
    }


def evaluate_grid(model, data, betas=BETA_GRID, snrs=PSNR_GRID, draws=5, n=None, progress=True):
    """The β × PSNR table of the report; returns a JSON-ready dict."""
    metric = "accuracy" if data.task == "classification" else "mse_ns2"
    shape = (len(betas), len(snrs))
    table = {
        k: np.zeros(shape) for k in ("value", "std", "n_active", "bits", "kl", "value_sampled")
    }
    start = time.perf_counter()
    for i, beta in enumerate(betas):
        for j, snr in enumerate(snrs):
            point = evaluate_point(model, data, beta, snr, draws=draws, n=n)
            for key in table:
                table[key][i, j] = point[key]
        if progress:
            row = " ".join(f"{v:.4f}" for v in table["value"][i])
            print(f"  beta={beta:.1e}: {metric} per PSNR {list(snrs)}: {row}", flush=True)
    better = np.argmax if metric == "accuracy" else np.argmin
    best = {}
    for j, snr in enumerate(snrs):
        i = int(better(table["value"][:, j]))
        best[f"{snr:g}"] = {"beta": betas[i], metric: float(table["value"][i, j])}
    return {
        "metric": metric,
        "betas": list(betas),
        "psnr_db": list(snrs),
        "draws": draws,
        "n_test": int(n or len(data.x_test)),
        **{k: v.tolist() for k, v in table.items()},
        "best_per_psnr": best,
        "eval_wall_s": time.perf_counter() - start,
    }


def plot_grid(report: dict, out_dir: str | Path) -> list[Path]:
    """accuracy_vs_beta.png, symbols_vs_beta.png and rate_vs_beta.png (one line per PSNR)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    for key, ylabel, name in (
        ("value", report["metric"], "accuracy_vs_beta.png"),
        ("n_active", "mean active dimensions (symbols)", "symbols_vs_beta.png"),
        ("kl", "rate: KL per example (nats)", "rate_vs_beta.png"),
    ):
        if key not in report:  # reports written before the rate was measured
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        values = np.asarray(report[key])
        for j, snr in enumerate(report["psnr_db"]):
            ax.plot(report["betas"], values[:, j], marker="o", ms=3, label=f"{snr:g} dB")
        ax.set_xscale("log")
        ax.set_xlabel("β")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(title="PSNR", fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=120)
        plt.close(fig)
        paths.append(out_dir / name)
    return paths


def write_report(report: dict, model_dir: str | Path) -> Path:
    path = Path(model_dir) / "report.json"
    path.write_text(json.dumps(report, indent=2))
    return path
