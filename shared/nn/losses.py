"""VIB objective terms: distortion + β·KL, with β per example.

Units: noise_var is the channel noise variance per real dimension (linear). Every KL here
is per example, summed over the d feature dimensions, in nats.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

# VL-VFE eq. (6) (Molchanov et al.'s fit of the log-uniform KL)
K1, K2, K3 = 0.63576, 1.87320, 1.48695
PRIORS = ("gaussian", "log-uniform")


def gaussian_kl(mu: torch.Tensor, theta: torch.Tensor, noise_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, theta^2 + sigma^2) || N(0, I)) per example, Hyper-VIB eq. (9).

    Shapes: mu, theta [N, d] (theta may be 0 for a deterministic encoder); noise_var [N, 1].
    Returns [N].
    """
    var = theta**2 + noise_var
    return 0.5 * (mu**2 + var - 1.0 - torch.log(var)).sum(dim=1)


def log_uniform_kl(gamma: torch.Tensor, noise_var: torch.Tensor) -> torch.Tensor:
    """KL to the log-uniform prior, VL-VFE eq. (6), with α_i = sigma^2 / γ_i^2.

    -KL ≈ k1·sigmoid(k2 + k3·log α) - 0.5·log(1 + 1/α) - k1. Shapes: gamma [N, d] or [d],
    noise_var [N, 1]. Returns [N]. Falls to 0 as γ_i -> 0, so it prunes dimensions.
    """
    log_alpha = torch.log(noise_var) - 2.0 * torch.log(gamma.clamp_min(1e-8))
    neg_kl = K1 * torch.sigmoid(K2 + K3 * log_alpha) - 0.5 * F.softplus(-log_alpha) - K1
    return -neg_kl.sum(dim=1)


def quantized_kl_bound(
    level_probs: torch.Tensor, levels: torch.Tensor, noise_var: torch.Tensor
) -> torch.Tensor:
    """D*_KL, QML-IB eq. (14): sum_k p_k·KL(N(q_k, sigma^2) || N(0, 1)) summed over d.

    An upper bound (joint convexity of KL) on the KL of the received Gaussian mixture
    sum_k p_k·N(q_k, sigma^2) of eq. (13). Shapes: level_probs [N, d, K], levels [K],
    noise_var [N, 1]. Returns [N].
    """
    per_level = 0.5 * (levels**2 + noise_var - 1.0 - torch.log(noise_var))  # [N, K]
    return (level_probs * per_level.unsqueeze(1)).sum(dim=(1, 2))


def distortion(outputs: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    """Per-example distortion: cross-entropy (classification) or squared error (regression)."""
    if task == "classification":
        return F.cross_entropy(outputs, target, reduction="none")
    if task == "regression":
        return (outputs.squeeze(1) - target) ** 2
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")


def vib_loss(dist: torch.Tensor, kl: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """mean_n [distortion_n + β_n·KL_n], Hyper-VIB eq. (7)/(16); beta [N, 1] or scalar."""
    beta = beta.view(-1) if torch.is_tensor(beta) else torch.tensor(beta)
    return (dist + beta * kl).mean()


def gaussian_kl_scalar(mean: float, var: float) -> float:
    """KL(N(mean, var) || N(0, 1)) for scalars (reference helper for tests and reports)."""
    return 0.5 * (mean**2 + var - 1.0 - math.log(var))
