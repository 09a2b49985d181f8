"""Variable-length feature encoding, VL-VFE eq. (8), (11)-(12) and Appendix B.

The importance of dimension i is the cumulative sum γ_i(σ) = Σ_{j≥i} g_j(σ) of a bias-free
monotone network g(σ) = tanh(|W2|·tanh(|W1|·σ)) of the channel noise std σ (linear, per real
dimension): g ≥ 0, g rises with σ and g → 0 as σ → 0. γ is therefore non-increasing along d,
so the dimensions with γ_i > γ0 (the ones sent) always form a prefix, and every γ_i falls as
the PSNR rises: the prefix shortens on a good channel (VL-VFE Fig. 6).

γ enters the encoder inside the tanh, z_i = tanh(γ_i·ŵ_i·[h; 1]) (eq. 8), so a small γ_i
shrinks the symbol towards 0, where the log-uniform KL (eq. 6, α_i = σ²/z_i²) is ~0.

With the β module on (a hyper model over β), g is scaled per dimension by the Hyper-VIB gate
sigmoid(u·log β + v) (eq. 13): the prefix can also shorten as β rises, and g → 0 as σ → 0
still holds.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from shared.nn.hyper import BetaGate


class AbsLinear(nn.Module):
    """Bias-free linear map with non-negative weights |W| (Appendix B's monotone layer)."""

    def __init__(self, in_features: int, out_features: int, scale: float):
        super().__init__()
        self.weight = nn.Parameter(scale * (1.0 + 0.1 * torch.randn(out_features, in_features)))

    def forward(self, x):
        return F.linear(x, self.weight.abs())


class VariableLengthImportance(nn.Module):
    """γ(σ[, β]) [N, d], non-increasing along d and in σ → 0, VL-VFE eq. (12), App. B.

    Initialised so that g_j(σ) ≈ σ/4: at 15 dB (σ = 0.18) γ_64 ≈ 0.045 > γ0 = 0.02 and all 64
    dimensions start active; training decides how many to keep at each σ.
    """

    def __init__(self, d: int, hidden: int = 16, beta_gate: bool = False):
        super().__init__()
        self.hidden = AbsLinear(1, hidden, scale=1.0)
        self.out = AbsLinear(hidden, d, scale=0.25 / hidden)
        # v = 0 (gate 0.5, not saturated) so that the gate can learn to follow β; the
        # initial g is then σ/8, still above γ0 for every dimension at 10 dB.
        self.beta_gate = BetaGate(d, v_init=0.0) if beta_gate else None

    def forward(self, noise_var: torch.Tensor, beta: torch.Tensor | None = None) -> torch.Tensor:
        sigma = noise_var.sqrt()  # [N, 1]
        g = torch.tanh(self.out(torch.tanh(self.hidden(sigma))))  # [N, d], >= 0, 0 at σ = 0
        if self.beta_gate is not None:
            g = g * self.beta_gate(beta)
        return torch.flip(torch.cumsum(torch.flip(g, [1]), dim=1), [1])  # γ_i = Σ_{j>=i} g_j


def active_mask(gamma: torch.Tensor, gamma0: float) -> torch.Tensor:
    """1 where γ_i > γ0 (sent), else 0; a prefix because γ is non-increasing."""
    return (gamma > gamma0).to(gamma.dtype)


def apply_mask(symbols: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """symbols·mask in the forward pass, identity gradient (straight-through, as VL-VFE's code):
    a pruned dimension still learns whether it should come back."""
    return symbols + (symbols * mask - symbols).detach()
