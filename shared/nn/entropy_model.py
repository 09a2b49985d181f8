"""Learned entropy model of the level indices, and the rate it charges (torch side).

P(k | j, β) = softmax_k(L(β)[j, k]) with L linear in log β between G grid points, the twin
of ``shared/entropy.py`` (a test pins both together). The rate term is the expected code
length under the encoder's level distribution p(k | x) of QML-IB eq. (10)-(11):

    R(x) = sum_j sum_k p(k | x, j) · (-log2 P(k | j, β))   bits per image,

the VIB rate with a learned marginal (cross-entropy = KL(p || P) + H(p) >= I(X; K)), counted
in bits as CompressAI's entropy bottleneck counts its latents. With a deterministic head
p(k | x) is the one-hot hard index and R is exactly the ideal code length.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LN2 = math.log(2.0)


class LearnedIndexPrior(nn.Module):
    def __init__(self, d: int, n_levels: int, beta_range: tuple[float, float], n_grid: int = 9):
        super().__init__()
        lo, hi = (math.log(b) for b in beta_range)
        grid = torch.linspace(lo, hi, n_grid) if hi > lo else torch.tensor([lo])
        self.register_buffer("log_beta_grid", grid.double())
        self.logits = nn.Parameter(torch.zeros(len(grid), d, n_levels))

    def log_probs(self, beta: torch.Tensor) -> torch.Tensor:
        """log P(k | j, β) [N, d, K] for beta [N, 1] (natural log)."""
        grid = self.log_beta_grid
        if len(grid) == 1:
            logits = self.logits[0].expand(beta.shape[0], -1, -1)
        else:
            pos = (torch.log(beta.view(-1).double()) - grid[0]) / (grid[1] - grid[0])
            pos = pos.clamp(0, len(grid) - 1)
            lo = pos.floor().long().clamp(max=len(grid) - 2)
            frac = (pos - lo).float().view(-1, 1, 1)
            logits = (1 - frac) * self.logits[lo] + frac * self.logits[lo + 1]
        return torch.log_softmax(logits, dim=-1)

    def rate_bits(
        self, level_probs: torch.Tensor, beta: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Expected code length in bits per example [N]; level_probs [N, d, K] (rows sum to 1),
        mask [N, d] (1 = sent) for variable length."""
        per_dim = -(level_probs * self.log_probs(beta)).sum(dim=-1) / LN2  # [N, d]
        if mask is not None:
            per_dim = per_dim * mask
        return per_dim.sum(dim=1)

    def code_bits(self, indices: torch.Tensor, beta: torch.Tensor, mask=None) -> torch.Tensor:
        """Ideal code length of hard indices [N, d] in bits per example [N]."""
        logp = self.log_probs(beta).gather(-1, indices.unsqueeze(-1)).squeeze(-1)
        per_dim = -logp / LN2
        if mask is not None:
            per_dim = per_dim * mask
        return per_dim.sum(dim=1)

    def to_dict(self) -> dict:
        """The table both ends read (shared.entropy.IndexEntropyModel.from_dict)."""
        from shared.entropy import IndexEntropyModel

        with torch.no_grad():
            table = IndexEntropyModel(self.log_beta_grid.cpu().numpy(), self.logits.cpu().numpy())
        return table.to_dict()
