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
# "gaussian": N(0, I) (Hyper-VIB eq. 9); "log-uniform": VL-VFE eq. (6); "gaussian-learned":
# N(m, diag(s²)) with m and s² trained (VL-VFE §V-D, the prior ablation of Figs. 7/8); "none":
# no rate term at all, cross-entropy only (VL-VFE's DeepJSCC and quantization baselines)
PRIORS = ("gaussian", "log-uniform", "gaussian-learned", "none")


def gaussian_kl(mu: torch.Tensor, theta: torch.Tensor, noise_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, theta^2 + sigma^2) || N(0, I)) per example, Hyper-VIB eq. (9).

    Shapes: mu, theta [N, d] (theta may be 0 for a deterministic encoder); noise_var [N, 1].
    Returns [N].
    """
    var = theta**2 + noise_var
    return 0.5 * (mu**2 + var - 1.0 - torch.log(var)).sum(dim=1)


def log_uniform_kl(
    symbols: torch.Tensor, noise_var: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """KL to the log-uniform prior, VL-VFE eq. (6), per example, α_i = σ²/(z_i² + ε).

    -KL_i ≈ k1·sigmoid(k2 + k3·log α_i) - 0.5·log(1 + 1/α_i) - k1. Shapes: symbols [N, d]
    (the sent z_i, 0 where pruned), noise_var [N, 1]. Returns [N], summed over d. Falls to 0
    as z_i -> 0 (α_i -> ∞), so it pushes dimensions towards being pruned.
    """
    log_alpha = torch.log(noise_var) - torch.log(symbols**2 + eps)
    neg_kl = K1 * torch.sigmoid(K2 + K3 * log_alpha) - 0.5 * F.softplus(-log_alpha) - K1
    return -neg_kl.sum(dim=1)


def learned_gaussian_kl(
    symbols: torch.Tensor, noise_var: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor
) -> torch.Tensor:
    """KL(N(z, σ²I) || N(m, diag(s²))) per example, the Gaussian prior of VL-VFE §V-D.

    The paper's ablation (Figs. 7/8) uses "a Gaussian distribution with a diagonal covariance
    matrix" whose "mean value and covariance matrix are optimized in the training process":
    m and log s² are trained with the model. Per dimension
    ½·[(σ² + (z_i − m_i)²)/s_i² − 1 + log s_i² − log σ²]. Shapes: symbols [N, d] (the sent z),
    noise_var [N, 1] (per real dimension), mean and log_var [d]. Returns [N], in nats.
    """
    var = torch.exp(log_var)
    per_dim = (noise_var + (symbols - mean) ** 2) / var - 1.0 + log_var - torch.log(noise_var)
    return 0.5 * per_dim.sum(dim=1)


KL_BOUNDS = ("eq14", "mixture")


def quantized_kl_bound(
    level_probs: torch.Tensor,
    levels: torch.Tensor,
    noise_var: torch.Tensor,
    kl_bound: str = "eq14",
) -> torch.Tensor:
    """Upper bound on the rate of the quantized, noisy feature, QML-IB eq. (13)-(14).

    The received ẑ_j = z̃_j + n, z̃_j ∈ {q_1..q_K} with probabilities p_jk (K = T + 1 =
    2^bits levels), has the Gaussian-mixture law sum_k p_jk·N(q_k, σ²) of eq. (13). With
    the mixture term M = sum_j sum_k p_jk·KL(N(q_k, σ²) || N(0, 1)):

    - "eq14": D*_KL of eq. (14) as written, M - H(Z̃) + d·log(T + 1), where
      H(Z̃) = -sum_j sum_k p_jk·log p_jk is the entropy of the level distribution (the d
      dimensions independent given x). The added term d·log K - H(Z̃) is ≥ 0.
    - "mixture": M alone, the tighter bound (joint convexity of the KL).

    Both upper-bound the mixture's KL. Shapes: level_probs [N, d, K], levels [K],
    noise_var [N, 1] (variance per real dimension). Returns [N], summed over d, in nats.
    """
    if kl_bound not in KL_BOUNDS:
        raise ValueError(f"kl_bound must be one of {KL_BOUNDS}, got {kl_bound!r}")
    per_level = 0.5 * (levels**2 + noise_var - 1.0 - torch.log(noise_var))  # [N, K]
    mixture = (level_probs * per_level.unsqueeze(1)).sum(dim=(1, 2))
    if kl_bound == "mixture":
        return mixture
    d, n_levels = level_probs.shape[1], level_probs.shape[2]
    # H(Z̃) [N] in nats; the clamp keeps the gradient finite where a level has p = 0
    # (d(p·log p)/dp = log p + 1 is -inf there, and NaN once multiplied through)
    entropy = -(level_probs * torch.log(level_probs.clamp_min(1e-12))).sum(dim=(1, 2))
    return mixture - entropy + d * math.log(n_levels)


def distortion(outputs: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    """Per-example distortion: cross-entropy (classification) or squared error (regression)."""
    if task == "classification":
        return F.cross_entropy(outputs, target, reduction="none")
    if task == "regression":
        return (outputs.squeeze(1) - target) ** 2
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")


LOSS_WEIGHTS = ("none", "inverse-d-beta", "inverse-beta", "knee")


def beta_weight(beta: torch.Tensor, d: int, mode: str, knee: float | None = None) -> torch.Tensor:
    """Per-example weight w(β) > 0 of the VIB loss (DESIGN §9); beta [N, 1] -> [N].

    With K links (beta [N, K]) β is Σ_k β_k, the weight of the summed rate of eq. (18).

    - "none": w = 1 (Hyper-VIB eq. 16 as written);
    - "inverse-d-beta": w = 1/(1 + d·β), so a draw's loss stays O(1) whatever its β;
    - "inverse-beta": w = 1/β, i.e. the loss distortion/β + KL (the IB Lagrangian scaled);
    - "knee": w = 1/(1 + β/knee): 1 below the knee β, 1/β (scaled) above it; the knee sets
      where the draws change from distortion-dominated to rate-dominated ("inverse-d-beta" is
      the knee 1/d). Regression on a normalised target has a distortion ~10x below a class
      cross-entropy, so its knee sits lower (trainer.experiments.ranging_regression).
    It stops the large-β draws (whose β·KL is ~d·β times larger) from dominating the shared
    weights when β is sampled per example. A positive w(β) keeps each β's optimum only for a
    model with separate parameters per β; with shared weights it moves the solution
    (tests/shared/nn/test_loss_weight.py works an example), so "none" is the paper's reference.
    """
    beta = beta.sum(dim=1) if beta.dim() == 2 else beta.view(-1)  # K links: Σ_k β_k
    if mode == "none":
        return torch.ones_like(beta)
    if mode == "inverse-d-beta":
        return 1.0 / (1.0 + d * beta)
    if mode == "inverse-beta":
        return 1.0 / beta
    if mode == "knee":
        if knee is None or not knee > 0:
            raise ValueError(f"loss weight 'knee' needs a knee β > 0, got {knee!r}")
        return 1.0 / (1.0 + beta / knee)
    raise ValueError(f"loss weight must be one of {LOSS_WEIGHTS}, got {mode!r}")


def vib_loss(
    dist: torch.Tensor, kl: torch.Tensor, beta: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """mean_n w_n·[distortion_n + β_n·KL_n], Hyper-VIB eq. (7)/(16); beta [N, 1] or scalar.

    With K links, kl and beta [N, K]: mean_n w_n·[distortion_n + Σ_k β_nk·KL_nk], QML-IB
    eq. (18). ``weight`` [N] is w(β) from ``beta_weight`` (None = 1).
    """
    beta = beta if torch.is_tensor(beta) else torch.tensor(beta)
    if kl.dim() == 2:
        rate = (beta.expand_as(kl) * kl).sum(dim=1)
    else:
        rate = beta.view(-1) * kl
    per_example = dist + rate
    if weight is not None:
        per_example = weight * per_example
    return per_example.mean()
