"""The baseline of QML-IB §IV: VDDIB (Shao, Mao & Zhang, "Task-oriented communication for
multidevice cooperative edge inference", IEEE TWC 2022; QML-IB ref. [18]), the model on which
selective retransmission (SR) is built.

VDDIB is the variational form of the distributed (deterministic) information bottleneck of
Aguerri & Zaidi (QML-IB ref. [19]): besides the fused classifier q_ψ(y | z_1:K), every device k
has its own auxiliary classifier q_ψk(y | z_k), and the objective (minimised) is

    E[−log q_ψ(y | z_1:K)] + β·Σ_k ( E[−log q_ψk(y | z_k)] + R_k ),

where R_k is device k's rate: with the fixed quantizer (the quantized version) the
deterministic IB's bit cost E[−log q_k(z̃_k)] ≥ H(Z̃_k) under a learned factorised categorical
prior q_k over the 2^bits uniform levels of [−1, 1]; without quantizer (the unquantized
version) the Gaussian encoder's KL(N(μ_k, Θ_k) || N(0, I)). As QML-IB describes it (§I) the
baseline's quantizer is fixed (uniform levels, straight-through gradient) and it does not model
the channel noise: by default it trains noise-free (``train_noise=False``) and is tested over
the same AWGN link as ours; ``train_noise=True`` is our stronger option, trained through the
link. The device and server networks are QML-IB's Table I, the same as ours
(shared/nn/qml_ib.py); the auxiliary classifiers are FC 256 + ReLU + FC.

Selective retransmission (a second round of features that the server asks for when it is not
confident) lives in trainer/vddib_sr.py and trainer/selective_retransmission.py (VDDIB-SR, the
paper's baseline); this model alone is the baseline named "VDDIB" (no SR) in the reports.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from shared.nn.losses import gaussian_kl
from shared.nn.qml_ib import TableIDevice, TableIServer, check_common
from shared.views import make_views

AUX_HIDDEN = 256


def uniform_levels(bits: int) -> torch.Tensor:
    """The fixed quantizer's 2^bits levels, uniform on [−1, 1] (both ends included)."""
    return torch.linspace(-1.0, 1.0, 2**bits)


def quantize_uniform(mu: torch.Tensor, levels: torch.Tensor) -> dict:
    """Nearest level (hard, straight-through gradient) and the soft assignment to the levels.

    Returns {"symbols" [N, d] (hard value forward, identity gradient), "assign" [N, d, L]
    (one-hot forward, softmax(−(μ − q_l)²/Δ²) gradient; Δ the level spacing)}."""
    spacing = float(levels[1] - levels[0])
    dist = (mu.unsqueeze(-1) - levels) ** 2
    soft = torch.softmax(-dist / spacing**2, dim=-1)
    hard = F.one_hot(dist.argmin(dim=-1), len(levels)).to(mu.dtype)
    value = levels[dist.argmin(dim=-1)]
    return {"symbols": mu + (value - mu).detach(), "assign": soft + (hard - soft).detach()}


class VddibModel(nn.Module):
    """VDDIB's K devices, fused classifier and K auxiliary classifiers (no SR).

    ``forward(x, noise_var)`` -> {"outputs" [N, C], "aux" [N, K, C], "rate" [N, K] (nats),
    "symbols" [N, K, d]}; ``noise_var`` σ² per real dimension is applied in training only when
    ``train_noise`` (eval always adds it: the test link is the same as ours)."""

    def __init__(self, n_links: int, d: int, bits: int | None = 4, overlap: int = 0,
                 image_hw: tuple[int, int] = (28, 28), n_outputs: int = 10,
                 train_noise: bool = False):  # fmt: skip
        super().__init__()
        check_common(n_links, d, bits, image_hw)
        self.n_links, self.d, self.bits, self.train_noise = n_links, d, bits, train_noise
        self.views = make_views(*image_hw, n_links, overlap)
        pixels = self.views[0].height * self.views[0].width
        self.devices = nn.ModuleList(TableIDevice(pixels, d) for _ in range(n_links))
        if bits is not None:
            self.register_buffer("levels", uniform_levels(bits))
            self.prior_logits = nn.Parameter(torch.zeros(n_links, d, 2**bits))
        self.server = TableIServer(n_links * d, n_outputs)
        self.aux = nn.ModuleList(
            nn.Sequential(nn.Linear(d, AUX_HIDDEN), nn.ReLU(), nn.Linear(AUX_HIDDEN, n_outputs))
            for _ in range(n_links)
        )

    def link(self, k: int, x: torch.Tensor) -> dict:
        """Device k's sent symbols [N, d] and rate R_k [N] (nats)."""
        mu, theta = self.devices[k](self.views[k].crop(x))
        if self.bits is None:
            z = mu + theta * torch.randn_like(mu) if self.training else mu
            no_noise = torch.zeros(len(x), 1, device=x.device)
            return {"symbols": z, "rate": gaussian_kl(mu, theta, no_noise)}
        q = quantize_uniform(mu, self.levels)
        log_prior = torch.log_softmax(self.prior_logits[k], dim=-1)  # [d, L]
        rate = -(q["assign"] * log_prior).sum(dim=(1, 2))
        return {"symbols": q["symbols"], "rate": rate}

    def forward(self, x: torch.Tensor, noise_var: float) -> dict:
        links = [self.link(k, x) for k in range(self.n_links)]
        symbols = torch.stack([s["symbols"] for s in links], dim=1)  # [N, K, d]
        received = symbols
        if self.train_noise or not self.training:
            received = symbols + float(noise_var) ** 0.5 * torch.randn_like(symbols)
        aux = torch.stack([head(received[:, k]) for k, head in enumerate(self.aux)], dim=1)
        return {
            "outputs": self.server(received.flatten(1)),
            "aux": aux,
            "rate": torch.stack([s["rate"] for s in links], dim=1),
            "symbols": symbols,
        }

    def loss(self, out: dict, y: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """The VDDIB objective above, mean over the batch; beta [K] (one β per device)."""
        ce = F.cross_entropy(out["outputs"], y, reduction="none")
        n, k, c = out["aux"].shape
        aux_ce = F.cross_entropy(
            out["aux"].reshape(n * k, c), y.repeat_interleave(k), reduction="none"
        ).view(n, k)
        return (ce + ((aux_ce + out["rate"]) * beta).sum(dim=1)).mean()
