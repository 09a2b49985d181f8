"""Training and testing the QML-IB paper models (shared/nn/qml_ib.py, shared/nn/vddib.py,
trainer/vddib_sr.py).

Algorithm 1 of QML-IB: mini-batches of M = 128, one noise sample per transmission (L = 1),
Adam; the channel noise variance σ² is fixed per model (Algorithm 1 takes σ_k² as input).
The last ``VAL_SIZE`` training images are held out for the β grid search, so the test set
is touched only by the reported numbers. Testing is the inference path: z = μ, the hard
quantizer, AWGN at σ², averaged over seeded noise draws.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from trainer.dataset import Dataset

VAL_SIZE = 5000
BATCH = 128
LR = 1e-3
EVAL_BATCH = 5000


@dataclass
class Split:
    """Training / validation / test tensors of one data set (images [N, 1, 28, 28])."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def split(data: Dataset, train_subset: int | None = None, n_test: int | None = None) -> Split:
    """The last VAL_SIZE training images as validation; the first ``train_subset`` of the
    rest for training; the first ``n_test`` test images."""
    if len(data.x_train) <= VAL_SIZE:
        raise ValueError(f"need more than {VAL_SIZE} training images, got {len(data.x_train)}")
    cut = len(data.x_train) - VAL_SIZE
    n_train = cut if train_subset is None else min(train_subset, cut)
    t = torch.from_numpy
    return Split(
        t(data.x_train[:n_train]), t(data.y_train[:n_train]),
        t(data.x_train[cut:]), t(data.y_train[cut:]),
        t(data.x_test[:n_test]), t(data.y_test[:n_test]),
    )  # fmt: skip


def noise_var(psnr_db: float) -> float:
    """σ² per real dimension at PSNR (dB) with peak power 1, QML-IB eq. (20)."""
    return 10.0 ** (-psnr_db / 10.0)


def train(model, s: Split, beta, psnr_db: float, epochs: int, seed: int, label: str = "") -> dict:
    """Algorithm 1 for ``epochs`` passes; ``beta`` one value or one per device. Returns the
    wall and CPU seconds and the last epoch's mean loss."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    betas = torch.as_tensor(beta, dtype=torch.float32).expand(model.n_links).clone()
    if (betas <= 0).any():
        raise ValueError(f"β must be > 0, got {betas.tolist()}")
    var = noise_var(psnr_db)
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    start, cpu = time.perf_counter(), time.process_time()
    model.train()
    n = len(s.x_train)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, BATCH):
            idx = order[i : i + BATCH]
            loss = model.loss(model(s.x_train[idx], var), s.y_train[idx], betas)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        if label:
            print(f"      {label} epoch {epoch + 1}/{epochs} loss {total / n:.4f}", flush=True)
    model.eval()
    return {
        "train_wall_s": time.perf_counter() - start,
        "train_cpu_s": time.process_time() - cpu,
        "final_loss": total / n,
    }


@torch.no_grad()
def inference_means(model, x: torch.Tensor, y: torch.Tensor, psnr_db: float, draws: int,
               seed: int) -> dict:  # fmt: skip
    """The inference path at PSNR, mean over ``draws`` noise draws: {"error" (fraction),
    "sent" (symbols sent per observation, summed over the links, where the model reports them
    (VDDIB-SR's retransmissions); None for the fixed-length models)}."""
    model.eval()
    torch.manual_seed(10_000 + seed)
    var = noise_var(psnr_db)
    wrong, sent = 0, None
    for _ in range(draws):
        for i in range(0, len(x), EVAL_BATCH):
            out = model(x[i : i + EVAL_BATCH], var)
            wrong += int((out["outputs"].argmax(dim=1) != y[i : i + EVAL_BATCH]).sum())
            if "sent" in out:
                sent = (sent or 0.0) + float(out["sent"].sum())
    n = draws * len(x)
    return {"error": wrong / n, "sent": None if sent is None else sent / n}


def error_rate(model, x: torch.Tensor, y: torch.Tensor, psnr_db: float, draws: int,
               seed: int) -> float:  # fmt: skip
    """Test error (fraction) of the inference path at PSNR, mean over ``draws`` noise draws."""
    return inference_means(model, x, y, psnr_db, draws, seed)["error"]


def mean_sd(values) -> dict:
    """{"mean", "sd" (sample, ddof 1; 0 for one value), "values"} of a list of floats."""
    arr = np.asarray(values, dtype=np.float64)
    sd = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
    return {"mean": float(arr.mean()), "sd": sd, "values": [float(v) for v in arr]}
