"""Learnable scalar quantizer, QML-IB eq. (8)-(12).

T = 2^bits - 1 sorted breakpoints b_t and non-negative amplitudes a_t with sum 1:
    hard  Q(x)  = sum_t a_t · sign(x - b_t)                     (eq. 8-9, inference)
    soft  Q~(x) = sum_t a_t · (2/π)·arctan(γ·(x - b_t)), γ = 10  (eq. 12, training)
so levels q_k = -1 + 2·sum_{t<=k} a_t lie in [-1, 1] with q_0 = -1 and q_T = +1.
shared/quantizer.py holds the NumPy hard step; a test pins both together.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from shared.quantizer import check_bits

TRAIN_MODES = ("soft", "ste")


class LearnedQuantizer(nn.Module):
    def __init__(self, bits: int, gamma: float = 10.0, train_mode: str = "soft"):
        super().__init__()
        check_bits(bits)
        if train_mode not in TRAIN_MODES:
            raise ValueError(f"train_mode must be one of {TRAIN_MODES}, got {train_mode!r}")
        self.bits = bits
        self.gamma = gamma
        self.train_mode = train_mode
        n_breaks = 2**bits - 1
        # breakpoints start uniform in (-1, 1): b_1 = -1 + w_0, b_{t+1} = b_t + softplus(raw)
        step = 2.0 / (n_breaks + 1)
        self.first_offset = nn.Parameter(torch.tensor(math.log(math.expm1(step))))
        self.raw_steps = nn.Parameter(torch.full((n_breaks - 1,), math.log(math.expm1(step))))
        self.raw_amplitudes = nn.Parameter(torch.zeros(n_breaks))

    def breakpoints(self) -> torch.Tensor:
        steps = torch.cat([F.softplus(self.first_offset).view(1), F.softplus(self.raw_steps)])
        return -1.0 + torch.cumsum(steps, dim=0)  # [T], ascending

    def amplitudes(self) -> torch.Tensor:
        return torch.softmax(self.raw_amplitudes, dim=0)  # [T], >= 0, sum 1

    def levels(self) -> torch.Tensor:
        """q_k = -1 + 2·sum_{t<=k} a_t for k = 0..T, ascending in [-1, 1]."""
        cum = torch.cumsum(self.amplitudes(), dim=0)
        return torch.cat([cum.new_full((1,), -1.0), -1.0 + 2.0 * cum])

    def indices(self, x: torch.Tensor) -> torch.Tensor:
        """Hard level index k = #{t : x > b_t} (int64), eq. (8)."""
        return (x.unsqueeze(-1) > self.breakpoints()).sum(dim=-1)

    def hard(self, x: torch.Tensor) -> torch.Tensor:
        return self.levels()[self.indices(x)]

    def soft(self, x: torch.Tensor, gamma: float | None = None) -> torch.Tensor:
        gamma = self.gamma if gamma is None else gamma
        arg = gamma * (x.unsqueeze(-1) - self.breakpoints())
        return (self.amplitudes() * (2.0 / math.pi) * torch.atan(arg)).sum(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.hard(x)
        soft = self.soft(x)
        if self.train_mode == "ste":
            return soft + (self.hard(x) - soft).detach()
        return soft

    def level_probabilities(self, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """P(Q(z) = q_k) for z ~ N(mu, std^2), QML-IB eq. (10)-(11). Returns [..., T+1]."""
        b = self.breakpoints()
        cdf = 0.5 * (1 + torch.erf((b - mu.unsqueeze(-1)) / (std.unsqueeze(-1) * math.sqrt(2))))
        lower = F.pad(cdf, (1, 0), value=0.0)
        upper = F.pad(cdf, (0, 1), value=1.0)
        return (upper - lower).clamp_min(0.0)
