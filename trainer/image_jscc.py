"""Training and evaluation of the image JSCC models (``shared.nn.image_jscc``).

Hyper-AJSCC §IV-B: MSE between the image and its reconstruction, Adam; the adaptive models
(Hyper-AJSCC, ADJSCC) draw one SNR per example from U[lo, hi] dB (the paper: U[0, 20]), a
BDJSCC trains at one SNR. Evaluation: mean over test images and noise draws of the per-image
PSNR (eq. 18, MAX = 1) and SSIM (scikit-image), at fixed test SNRs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from shared.image_metrics import psnr_db, ssim
from shared.nn.image_jscc import ImageJSCC, channels_for_ratio


@dataclass
class ImageTrainConfig:
    ratio: float = 1 / 12  # R = complex channel uses per source value
    adaptation: str = "hyper"  # none (BDJSCC) | hyper (Hyper-AJSCC) | attention (ADJSCC)
    snr_range: tuple[float, float] = (0.0, 20.0)  # dB; lo == hi trains at one SNR
    filters: int = 16
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    train_subset: int | None = None
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        lo, hi = self.snr_range
        if lo > hi:
            raise ValueError(f"snr_range must be (lo, hi) with lo <= hi, got {self.snr_range}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")


def build_model(cfg: ImageTrainConfig, image_shape: tuple[int, int, int]) -> ImageJSCC:
    c, h, w = image_shape
    if h != w:
        raise ValueError(f"square images only, got {h}×{w}")
    channels = channels_for_ratio(cfg.ratio, image_shape)
    return ImageJSCC(c, h, cfg.filters, channels, cfg.adaptation)


def train_image_jscc(cfg: ImageTrainConfig, x_train: np.ndarray) -> tuple[ImageJSCC, dict]:
    """Train one model on float [N, C, H, W] images in [0, 1]; returns (model, log)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    x = torch.from_numpy(x_train[: cfg.train_subset] if cfg.train_subset else x_train)
    model = build_model(cfg, tuple(x.shape[1:]))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    lo, hi = cfg.snr_range
    log = {"epochs": [], "config": asdict(cfg)}
    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(cfg.epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        total, seen = 0.0, 0
        model.train()
        for i in range(0, len(x), cfg.batch_size):
            batch = x[order[i : i + cfg.batch_size]]
            snr = lo + (hi - lo) * torch.rand(len(batch), 1)
            loss = torch.mean((model(batch, snr)["x_hat"] - batch) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        mse = total / seen
        log["epochs"].append({"epoch": epoch + 1, "mse": mse})
        if cfg.progress:
            print(
                f"      epoch {epoch + 1}/{cfg.epochs}: train MSE {mse:.5f} "
                f"({10 * np.log10(1 / mse):.2f} dB) {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    model.eval()
    log["train_wall_s"] = time.perf_counter() - start
    log["train_cpu_s"] = time.process_time() - cpu_start
    return model, log


@torch.no_grad()
def reconstruct(
    model: ImageJSCC, images: np.ndarray, snr_db: float, seed: int, batch: int = 500
) -> np.ndarray:
    """Decoded images [N, C, H, W] for one noise draw at ``snr_db`` (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch])
        snr = torch.full((len(x), 1), float(snr_db))
        out.append(model(x, snr, generator=gen)["x_hat"].numpy())
    return np.concatenate(out)


def evaluate_image_point(
    model: ImageJSCC, images: np.ndarray, snr_db: float, draws: int = 2, seed: int = 0
) -> dict:
    """Mean per-image PSNR (dB) and SSIM over ``images`` and ``draws`` noise draws."""
    psnrs, ssims = [], []
    for draw in range(draws):
        decoded = reconstruct(model, images, snr_db, seed=seed * 1000 + draw)
        psnrs.append(psnr_db(images, decoded))
        ssims.append(ssim(images, decoded))
    return {"psnr_db": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}
