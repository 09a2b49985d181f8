"""The linear case of Hyper-VIB, Theorem 1 (eq. 24-29): the Gaussian information bottleneck.

For jointly Gaussian (X, Y) and a linear encoder T = A·X + ξ, ξ ~ N(0, I), minimising
β·I(X;T) - I(T;Y) (Hyper-VIB's β multiplies the rate; it is 1/β of Chechik et al. 2005) has
the closed form, eq. (24):

    A*(β) = diag(α_1(β), ..., α_k(β)) · V^T,
    α_i(β) = sqrt( max(0, (1 - λ_i)/β - 1) / (λ_i · r_i) ),   r_i = v_i^T Σ_x v_i,

with (λ_i, v_i) the generalised eigenpairs of Σ_{x|y} v = λ Σ_x v, λ ascending. Row i is
off for β ≥ β_i = 1 - λ_i, the critical β of dimension i.

What is quoted and what is derived. Quoted (the design summary of the paper,
docs/ARCHITECTURE.md §2): the β-adjustment module is the ordinary Hyper-VIB gate
g(β) = sigmoid(u·log β + v) with u = -1, v = ln 2 + 2 ln‖B‖, together with given weight
matrices W⁽¹⁾, W⁽²⁾, and it reproduces A*(β). The paper's eq. (25)-(29), its B and its
W⁽¹⁾, W⁽²⁾ were not available (a search found only the abstract), so the rest is derived
here:

- B = Σ_x^{-1/2} Σ_xy Σ_y^{-1/2}, the whitened cross-covariance. Its squared singular values
  are ρ_i² = 1 - λ_i = β_i, so ‖B‖₂² = 1 - λ_1 is the largest critical β, and
  e^v = 2‖B‖² puts the gate's midpoint g = 1/2 at twice it: g(β) = 2‖B‖²/(2‖B‖² + β).
- With ḡ = 1 - g = sigmoid(log β - v) (the same gate, u and v negated), g/ḡ = e^v/β, so
  α_i(β)² = relu(W⁽¹⁾_i · [g; ḡ]) / ḡ with W⁽¹⁾_i = [(1 - λ_i)/(e^v λ_i r_i), -1/(λ_i r_i)],
  and A(β) = diag(α(β)) · W⁽²⁾ with W⁽²⁾ = V^T. This equals eq. (24) for every β > 0.
- The elementwise relu, ratio and square root are needed: sums and products of sigmoid
  gates and fixed linear maps are rational, smooth functions of β, while α_i(β) has a
  square root, a kink at β_i and a pole at β -> 0. Any v gives an exact construction once
  W⁽¹⁾ is built with the same e^v; a different u or v at run time breaks it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def conditional_covariance(sigma_x, sigma_xy, sigma_y):
    """Σ_{x|y} = Σ_x - Σ_xy Σ_y^{-1} Σ_yx."""
    return sigma_x - sigma_xy @ np.linalg.solve(sigma_y, sigma_xy.T)


def generalized_eig(sigma_x_given_y, sigma_x):
    """Eigenpairs of Σ_{x|y} v = λ Σ_x v; returns (λ ascending [k], V [n, k] columns v_i)."""
    chol = np.linalg.cholesky(sigma_x)
    inv_chol = np.linalg.inv(chol)
    lam, w = np.linalg.eigh(inv_chol @ sigma_x_given_y @ inv_chol.T)
    return lam, inv_chol.T @ w


def optimal_projection(beta: float, lam, vecs, sigma_x) -> np.ndarray:
    """A*(β) of eq. (24), [k, n]."""
    r = np.einsum("ik,ij,jk->k", vecs, sigma_x, vecs)
    alpha_sq = np.maximum(0.0, (1.0 - lam) / beta - 1.0) / (lam * r)
    return np.sqrt(alpha_sq)[:, None] * vecs.T


def gib_lagrangian(a, beta, sigma_x, sigma_x_given_y) -> float:
    """β·I(X;T) - I(T;Y) in nats for T = A X + ξ (Chechik et al. eq. for Gaussian IB)."""
    eye = np.eye(a.shape[0])
    i_xt = 0.5 * np.linalg.slogdet(a @ sigma_x @ a.T + eye)[1]
    i_ty = i_xt - 0.5 * np.linalg.slogdet(a @ sigma_x_given_y @ a.T + eye)[1]
    return beta * i_xt - i_ty


def theorem1_gate_v(lam) -> float:
    """v = ln 2 + 2 ln‖B‖₂ with ‖B‖₂² = 1 - λ_1 (B the whitened cross-covariance)."""
    return math.log(2.0) + math.log(1.0 - float(np.min(lam)))


class LinearHyperEncoder(nn.Module):
    """T(β) = A(β)·x + ξ with A(β) = diag(α(β))·W⁽²⁾ driven by one Hyper-VIB β gate.

    α(β)² = relu(W⁽¹⁾·[g; 1 - g]) / (1 - g), g = sigmoid(u·log β + v), u = -1,
    v = ln 2 + 2 ln‖B‖ (see the module docstring for what is derived). ``projection(β)``
    returns A(β) [k, n]; it equals eq. (24) for every β > 0.
    """

    def __init__(self, lam, vecs, sigma_x):
        super().__init__()
        r = np.einsum("ik,ij,jk->k", vecs, sigma_x, vecs)
        v = theorem1_gate_v(lam)
        scale = 1.0 / (lam * r)
        self.u = nn.Parameter(torch.tensor(-1.0, dtype=torch.float64))
        self.v = nn.Parameter(torch.tensor(v, dtype=torch.float64))
        w1 = np.stack([(1.0 - lam) * scale / math.exp(v), -scale], axis=1)  # [k, 2]
        self.w1 = nn.Parameter(torch.as_tensor(w1))
        self.w2 = nn.Parameter(torch.as_tensor(vecs.T.copy()))  # [k, n]

    def gates(self, beta: torch.Tensor) -> torch.Tensor:
        """[g, 1 - g] for β [N, 1] -> [N, 2]; 1 - g evaluated as sigmoid(-pre), no cancellation."""
        pre = self.u * torch.log(beta) + self.v
        return torch.cat([torch.sigmoid(pre), torch.sigmoid(-pre)], dim=1)

    def row_scales(self, beta: torch.Tensor) -> torch.Tensor:
        """α(β) [N, k] for β [N, 1]."""
        g = self.gates(beta)
        return torch.sqrt(torch.relu(g @ self.w1.T) / g[:, 1:])

    def projection(self, beta: float) -> torch.Tensor:
        """The effective A(β) [k, n]."""
        b = torch.tensor([[beta]], dtype=self.w2.dtype)
        return self.row_scales(b).view(-1, 1) * self.w2

    def forward(self, x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """Noise-free part A(β)·x per example: x [N, n], beta [N, 1] -> [N, k]."""
        return self.row_scales(beta) * (x @ self.w2.T)
