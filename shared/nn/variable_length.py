"""Variable-length feature encoding, VL-VFE eq. (11)-(12) and Appendix B.

g(noise_var, β) >= 0 comes from a monotone MLP (non-negative weights, softplus activations)
of the features [1 + log10(noise_var)/2.5, -log10(β)/5] (= [1 - SNR_dB/25, decades below
β = 1 / 5], both about [0, 1] over the trained ranges), so g rises with the channel noise and
falls with β. The log scale matters: linear noise_var moves only from 0.1 to 0.003 between
10 and 25 dB, too little for the prefix to follow the PSNR.
The cumulative importance G_i = sum_{j>=i} g_j is non-increasing in i, and the dimension
importance γ_i = 1 - exp(-G_i) in [0, 1) keeps that order, so the dimensions with
γ_i > γ0 form a prefix whose length falls as the SNR or β rises. (Squashing G into [0, 1)
is our choice: it keeps the symbols' peak amplitude <= 1.)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MonotoneLinear(nn.Module):
    """Linear layer with weights softplus(raw) >= 0 (Appendix B's monotone constraint)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.raw_weight = nn.Parameter(torch.randn(out_features, in_features) * 0.5 - 1.0)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        return F.linear(x, F.softplus(self.raw_weight), self.bias)


class VariableLengthImportance(nn.Module):
    """γ(noise_var, β) [N, d], non-increasing along d, VL-VFE eq. (12)."""

    def __init__(self, d: int, hidden: int = 32):
        super().__init__()
        self.hidden = MonotoneLinear(2, hidden)
        self.out = MonotoneLinear(hidden, d)
        nn.init.constant_(self.out.bias, -2.0)

    def forward(self, noise_var: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        noise_feature = 1.0 + torch.log10(noise_var) / 2.5
        features = torch.cat([noise_feature, -torch.log10(beta) / 5.0], dim=1)
        g = F.softplus(self.out(F.softplus(self.hidden(features))))  # [N, d], >= 0
        cumulative = torch.flip(torch.cumsum(torch.flip(g, [1]), dim=1), [1])  # G_i
        return 1.0 - torch.exp(-cumulative)


def active_mask(gamma: torch.Tensor, gamma0: float) -> torch.Tensor:
    """1 where γ_i > γ0 (sent), else 0; a prefix because γ is non-increasing."""
    return (gamma > gamma0).to(gamma.dtype)
