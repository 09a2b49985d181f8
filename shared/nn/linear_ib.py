"""Hyper-VIB Theorem 1 (§III-C, eq. 18-29): a two-layer β hypernetwork is the optimal device.

The linear model, eq. (18): z = A·x, ẑ = z + ε with ε ~ N(0, σ²I), ŷ = Bᵀ·ẑ, for x ∈ Rⁿ,
y ∈ R, the device map A [d, n] and the edge's linear decoder B [d, 1]. With the training set
as X = [x⁽¹⁾ … x⁽ᴺ⁾] [n, N] and y [1, N] (N ≫ n, rank X = n), eq. (19)-(21) give eq. (22):

    C(A, B) = (1/N)·{‖y - BᵀAX‖² + (β/2)·tr(XᵀAᵀAX)} + σ²BᵀB + (β/2)·d·(σ² - ln σ² - 1),

whose gradient in A, eq. (23), vanishes at eq. (24):

    A*(β) = (BBᵀ + ½βI)⁻¹ · B·y·Xᵀ(XXᵀ)⁻¹.

The construction, eq. (25)-(29). B = UΣVᵀ with U [d, d] orthogonal, Σ [d, 1] = (‖B‖, 0, …, 0)ᵀ
and V = 1 (‖B‖ is the Euclidean norm of the vector B, its one singular value; a sign of V is
moved into U's first column). The device is two hyper linear layers of eq. (12)-(13)
(``shared.nn.hyper.HyperLinear``, no bias, no activation in between):

- layer 1: W⁽¹⁾ = ‖B‖⁻²·Σ·y·Xᵀ(XXᵀ)⁻¹ [d, n] (only row 1 is non-zero), β module
  u⁽¹⁾ = -1·𝟙, v⁽¹⁾ = (ln 2 + 2 ln‖B‖)·𝟙, so its gate is, eq. (26),
  sigmoid(-ln β + ln 2 + 2 ln‖B‖) = ‖B‖²/(‖B‖² + ½β);
- layer 2: W⁽²⁾ = 2U [d, d], u⁽²⁾ = v⁽²⁾ = 0, so its gate is sigmoid(0) = ½ and
  W⁽²⁾(β) = U, eq. (28).

Then W⁽²⁾(β)·W⁽¹⁾(β) = U·(ΣΣᵀ + ½βI)⁻¹·Σ·y·Xᵀ(XXᵀ)⁻¹ = A*(β) of eq. (25) for every β > 0,
eq. (29). Rows 2..d of W⁽¹⁾ are zero, so the gates of those rows do not enter A(β).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from shared.nn.hyper import HyperLinear


def decoder_svd(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(U [d, d], Σ [d, 1]) of B = UΣVᵀ [d, 1] with V = 1, as eq. (25) writes it."""
    u, s, vh = torch.linalg.svd(b, full_matrices=True)
    u = u.clone()
    u[:, 0] = u[:, 0] * torch.sign(vh[0, 0])  # V = ±1: keep V = 1, the sign goes into U
    sigma = torch.zeros_like(b)
    sigma[0, 0] = s[0]
    return u, sigma


def least_squares_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """y·Xᵀ(XXᵀ)⁻¹ [1, n] for X [n, N], y [1, N] (XXᵀ is symmetric and invertible)."""
    return torch.linalg.solve(x @ x.T, x @ y.T).T


def theorem1_gate_v(b: torch.Tensor) -> float:
    """v⁽¹⁾ = ln 2 + 2 ln‖B‖ of the first layer's β module (eq. 26)."""
    return math.log(2.0) + 2.0 * math.log(float(torch.linalg.vector_norm(b)))


def linear_vib_loss(a, b, x, y, beta, noise_var: float = 1.0) -> torch.Tensor:
    """C_VIB(A, B) of eq. (22); a [d, n] or [K, d, n] (one A per β), beta float or [K].

    Returns a scalar, or [K] for K stacked A's. Differentiable in a (and b).
    """
    n_examples, d = x.shape[1], b.shape[0]
    z = a @ x  # [.., d, N]
    residual = y - b.T @ z  # [.., 1, N]
    beta = torch.as_tensor(beta, dtype=x.dtype)
    fit = residual.square().sum(dim=(-2, -1)) + 0.5 * beta * z.square().sum(dim=(-2, -1))
    noise = noise_var * (b.T @ b).squeeze()
    const = 0.5 * beta * d * (noise_var - math.log(noise_var) - 1.0)
    return fit / n_examples + noise + const


class Theorem1Device(nn.Module):
    """The device of Theorem 1: two bias-free HyperLinear layers, x [N, n] -> z [N, d].

    Built by :func:`build_theorem1_device`; ``projection`` is the map A(β) the network applies.
    """

    def __init__(self, n: int, d: int, dtype=torch.float64):
        super().__init__()
        self.layer1 = HyperLinear(n, d, beta_gate=True, snr_scale=False).to(dtype)
        self.layer2 = HyperLinear(d, d, beta_gate=True, snr_scale=False).to(dtype)
        for layer in (self.layer1, self.layer2):
            with torch.no_grad():
                layer.linear.bias.zero_()
            layer.linear.bias.requires_grad_(False)  # eq. (18) has no bias

    def forward(self, x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """z = W⁽²⁾(β)·W⁽¹⁾(β)·x per example; beta [N, 1]."""
        return self.layer2(self.layer1(x, beta), beta)

    def projection(self, beta) -> torch.Tensor:
        """A(β) [d, n] (beta a float) or [K, d, n] (beta [K]): the network applied to the unit
        vectors e_1..e_n, column j of A being z(e_j)."""
        betas = torch.as_tensor(beta, dtype=self.layer1.linear.weight.dtype).reshape(-1)
        n = self.layer1.linear.in_features
        eye = torch.eye(n, dtype=betas.dtype).repeat(len(betas), 1)  # [K·n, n]
        z = self(eye, betas.repeat_interleave(n).view(-1, 1))  # [K·n, d]
        a = z.view(len(betas), n, -1).transpose(1, 2)  # [K, d, n]
        return a[0] if torch.as_tensor(beta).dim() == 0 else a

    def gated_weights(self, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(W⁽¹⁾(β), W⁽²⁾(β)) of eq. (27)-(28): each layer's gate ⊙_row its weight, eq. (12)."""
        b = torch.tensor([[beta]], dtype=self.layer1.linear.weight.dtype)
        return tuple(
            layer.beta_gate(b).view(-1, 1) * layer.linear.weight
            for layer in (self.layer1, self.layer2)
        )


def build_theorem1_device(b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> Theorem1Device:
    """Theorem 1's parameters for decoder B [d, 1] and data X [n, N], y [1, N] (eq. 25-28)."""
    d, n = b.shape[0], x.shape[0]
    u, sigma = decoder_svd(b)
    norm_sq = float(torch.linalg.vector_norm(b)) ** 2
    device = Theorem1Device(n, d, dtype=b.dtype)
    with torch.no_grad():
        device.layer1.linear.weight.copy_(sigma @ least_squares_map(x, y) / norm_sq)
        device.layer1.beta_gate.u.fill_(-1.0)
        device.layer1.beta_gate.v.fill_(theorem1_gate_v(b))
        device.layer2.linear.weight.copy_(2.0 * u)
        device.layer2.beta_gate.u.zero_()
        device.layer2.beta_gate.v.zero_()
    return device


def optimal_device_map(b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, beta: float):
    """A*(β) of eq. (24) [d, n], the closed form the construction is checked against."""
    eye = torch.eye(b.shape[0], dtype=b.dtype)
    return torch.linalg.solve(b @ b.T + 0.5 * beta * eye, b @ least_squares_map(x, y))
