"""QML-IB as the paper writes it: the Table I networks and the objective of eq. (15)/(18).

K devices each see one view of the image (shared/views.py, after the paper's ref. [31]). Device
k is Table I's device network, one fully connected layer + tanh: μ_k = tanh(W_k x_k + b_k) with
|μ_k,i| ≤ 1 (peak power 1, eq. 20); the same layer also gives θ_k (softplus) for the Gaussian
encoder of eq. (1). z_k ~ N(μ_k, Θ_k) goes through the learned quantizer χ_k (eq. 8–12: soft
arctan with γ = 10 in training, the hard step at inference; T = 2^bits − 1 breakpoints) and
the AWGN link ẑ_k = z̃_k + ε_k, ε_k ~ N(0, σ_k² I). The server is Table I's: the K received
features concatenated -> FC 1024 + ReLU -> FC 256 + ReLU -> FC (softmax in the loss).

Rate term per device: D*_KL of eq. (14) from the level pmf of eq. (10)–(11) (quantized), or,
with ``bits=None`` (the unquantized version the paper simulates), the exact KL of eq. (6)/(7)
for ẑ_k = z_k + ε_k ~ N(μ_k, Θ_k + σ_k² I) against r_k = N(0, I). Loss eq. (18) with L = 1.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from shared.nn.losses import gaussian_kl, quantized_kl_bound
from shared.nn.quantizer import LearnedQuantizer
from shared.views import make_views

SERVER_HIDDEN = (1024, 256)  # Table I


class TableIDevice(nn.Module):
    """Table I device network: one FC layer + tanh -> μ [N, d]; the same layer's second half
    gives θ = softplus(·) [N, d] (eq. 1)."""

    def __init__(self, in_features: int, d: int):
        super().__init__()
        self.d = d
        self.fc = nn.Linear(in_features, 2 * d)
        with torch.no_grad():  # start with a small θ (softplus(-4) ≈ 0.018)
            self.fc.bias[d:].fill_(-4.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(x.flatten(1))
        return torch.tanh(h[:, : self.d]), F.softplus(h[:, self.d :])


class TableIServer(nn.Module):
    """Table I server network: FC 1024 + ReLU, FC 256 + ReLU, FC n_outputs (logits)."""

    def __init__(self, in_features: int, n_outputs: int = 10):
        super().__init__()
        h1, h2 = SERVER_HIDDEN
        self.net = nn.Sequential(
            nn.Linear(in_features, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(),
            nn.Linear(h2, n_outputs),
        )  # fmt: skip

    def forward(self, received: torch.Tensor) -> torch.Tensor:
        return self.net(received)


def check_common(n_links: int, d: int, bits: int | None, image_hw: tuple[int, int]) -> None:
    """Bad sizes get a clear error (views themselves are checked by make_views)."""
    if d < 1:
        raise ValueError(f"d (symbols per device) must be >= 1, got {d}")
    if bits is not None and bits not in (1, 2, 4, 8):
        raise ValueError(f"bits must be 1, 2, 4, 8 or None (unquantized), got {bits!r}")
    make_views(*image_hw, n_links)


class QmlIbModel(nn.Module):
    """QML-IB's K devices and one server (Fig. 1, Algorithm 1).

    ``forward(x, noise_var)`` -> {"outputs" [N, C], "kl" [N, K] (nats), "symbols" [N, K, d]};
    ``noise_var`` is σ_k² per real dimension (float, same on every link, peak power 1).
    In eval mode z = μ (no sampling) and the quantizer takes its hard step (eq. 8–9).
    """

    def __init__(self, n_links: int, d: int, bits: int | None = 4, overlap: int = 0,
                 image_hw: tuple[int, int] = (28, 28), n_outputs: int = 10):  # fmt: skip
        super().__init__()
        check_common(n_links, d, bits, image_hw)
        self.n_links, self.d, self.bits = n_links, d, bits
        self.views = make_views(*image_hw, n_links, overlap)
        pixels = self.views[0].height * self.views[0].width
        self.devices = nn.ModuleList(TableIDevice(pixels, d) for _ in range(n_links))
        self.quantizers = nn.ModuleList(
            LearnedQuantizer(bits) for _ in range(n_links) if bits is not None
        )
        self.server = TableIServer(n_links * d, n_outputs)

    def link(self, k: int, x: torch.Tensor, noise_var: float) -> dict:
        """Device k: (μ, θ) from its view, the sent symbols and the rate term [N]."""
        mu, theta = self.devices[k](self.views[k].crop(x))
        var = torch.full((len(x), 1), float(noise_var), device=x.device)
        if self.training:
            z = mu + theta * torch.randn_like(mu)
        else:
            z = mu
        if self.bits is None:
            return {"symbols": z, "kl": gaussian_kl(mu, theta, var), "mu": mu, "theta": theta}
        quantizer = self.quantizers[k]
        probs = quantizer.level_probabilities(mu, theta.clamp_min(1e-4))  # eq. (10)-(11)
        kl = quantized_kl_bound(probs, quantizer.levels(), var, kl_bound="eq14")  # eq. (14)
        return {"symbols": quantizer(z), "kl": kl, "mu": mu, "theta": theta, "probs": probs}

    def forward(self, x: torch.Tensor, noise_var: float) -> dict:
        links = [self.link(k, x, noise_var) for k in range(self.n_links)]
        symbols = torch.stack([s["symbols"] for s in links], dim=1)  # [N, K, d]
        received = symbols + float(noise_var) ** 0.5 * torch.randn_like(symbols)
        return {
            "outputs": self.server(received.flatten(1)),
            "kl": torch.stack([s["kl"] for s in links], dim=1),
            "symbols": symbols,
        }

    def loss(self, out: dict, y: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """Eq. (18) with L = 1: mean over the batch of CE + Σ_k β_k·D*_KL,k; beta [K]."""
        ce = F.cross_entropy(out["outputs"], y, reduction="none")
        return (ce + (out["kl"] * beta).sum(dim=1)).mean()
