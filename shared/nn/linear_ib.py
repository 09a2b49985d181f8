"""The linear case of Hyper-VIB, Theorem 1 (eq. 24-29): the Gaussian information bottleneck.

For jointly Gaussian (X, Y) and a linear encoder T = A·X + ξ, ξ ~ N(0, I), minimising
β·I(X;T) - I(T;Y) (Hyper-VIB's β multiplies the rate; it is 1/β of Chechik et al.) has the
closed form, eq. (24):

    A*(β) = diag(α_1(β), ..., α_k(β)) · V^T,
    α_i(β) = sqrt( max(0, (1 - λ_i)/β - 1) / (λ_i · r_i) ),   r_i = v_i^T Σ_x v_i,

with (λ_i, v_i) the generalised eigenpairs of Σ_{x|y} v = λ Σ_x v, λ ascending.

Hypernetwork realisation (our reconstruction of eq. 25-29, which DESIGN.md does not quote):
a fixed linear layer W = V^T followed by a per-unit β-module h_i(β) = sqrt(relu(p_i/β + q_i))
with p_i = (1 - λ_i)/(λ_i r_i) and q_i = -1/(λ_i r_i), so diag(h(β))·W = A*(β) for every β.
"""

from __future__ import annotations

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


class InverseBetaGate(nn.Module):
    """h(β) = sqrt(relu(p/β + q)) per output unit (eq. 25-29 reconstruction)."""

    def __init__(self, p: torch.Tensor, q: torch.Tensor):
        super().__init__()
        self.p = nn.Parameter(p)
        self.q = nn.Parameter(q)

    def forward(self, beta: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.relu(self.p / beta + self.q))


class LinearHyperEncoder(nn.Module):
    """T(β) = diag(h(β))·W x: the hypernetwork whose parameters reproduce A*(β)."""

    def __init__(self, lam, vecs, sigma_x):
        super().__init__()
        r = np.einsum("ik,ij,jk->k", vecs, sigma_x, vecs)
        self.weight = nn.Parameter(torch.as_tensor(vecs.T.copy()))
        self.gate = InverseBetaGate(
            torch.as_tensor((1.0 - lam) / (lam * r)), torch.as_tensor(-1.0 / (lam * r))
        )

    def projection(self, beta: float) -> torch.Tensor:
        """The effective A(β) [k, n]."""
        b = torch.tensor([[beta]], dtype=self.weight.dtype)
        return self.gate(b).view(-1, 1) * self.weight
