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

from shared.fading import NO_FADING, Fading
from shared.fading import draw as draw_fading
from shared.image_metrics import psnr_db, ssim
from shared.nn.fading import apply_fading
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
    fading: str = "none"  # block fading in training (shared/fading.py), ZF with perfect CSI

    def __post_init__(self):
        self.fading_channel()  # raises ValueError for an unknown kind
        lo, hi = self.snr_range
        if lo > hi:
            raise ValueError(f"snr_range must be (lo, hi) with lo <= hi, got {self.snr_range}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")

    def fading_channel(self) -> Fading:
        return NO_FADING if self.fading == "none" else Fading(self.fading)


def fading_forward(model: ImageJSCC, batch, snr, fading: Fading, rng, snr_range) -> dict:
    """The model's forward under block fading at average ``snr`` [N, 1]: the encoder is told
    the average SNR, the decoder the receiver's instantaneous SNR clipped to ``snr_range``."""
    fading_draw = draw_fading(fading, len(batch), model.symbols, snr[:, 0].numpy(), rng)
    heard = np.clip(fading_draw.instantaneous_snr_db(), *snr_range).astype(np.float32)
    return model(
        batch, snr, channel=lambda symbols: apply_fading(symbols, fading_draw),
        decoder_snr_db=torch.from_numpy(heard)[:, None],
    )  # fmt: skip


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
    fading = cfg.fading_channel()
    fading_rng = np.random.default_rng(cfg.seed + 7)
    log = {"epochs": [], "config": asdict(cfg)}
    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(cfg.epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        total, seen = 0.0, 0
        model.train()
        for i in range(0, len(x), cfg.batch_size):
            batch = x[order[i : i + cfg.batch_size]]
            snr = lo + (hi - lo) * torch.rand(len(batch), 1)
            if fading.active:
                out = fading_forward(model, batch, snr, fading, fading_rng, (lo, hi))
            else:
                out = model(batch, snr)
            loss = torch.mean((out["x_hat"] - batch) ** 2)
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


@torch.no_grad()
def evaluate_image_fading(
    model: ImageJSCC, images: np.ndarray, snr_db: float, fading: Fading, snr_range,
    draws: int = 2, seed: int = 0, batch: int = 500,
) -> dict:  # fmt: skip
    """Mean per-image PSNR (dB) and SSIM over block fading at average ``snr_db``: the encoder
    told the average SNR, the decoder the receiver's instantaneous SNR (clipped to
    ``snr_range``), one channel draw per image and per draw (shared.fading's sampler)."""
    psnrs, ssims = [], []
    for k in range(draws):
        rng = np.random.default_rng(seed * 1000 + k)
        decoded = []
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i : i + batch])
            snr = torch.full((len(x), 1), float(snr_db))
            decoded.append(fading_forward(model, x, snr, fading, rng, snr_range)["x_hat"].numpy())
        decoded = np.concatenate(decoded)
        psnrs.append(psnr_db(images, decoded))
        ssims.append(ssim(images, decoded))
    return {"psnr_db": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}


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
