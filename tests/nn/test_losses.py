import math

import numpy as np
import pytest
import torch

from shared.nn.losses import (
    K1,
    gaussian_kl,
    log_uniform_kl,
    quantized_kl_bound,
)


def test_gaussian_kl_matches_monte_carlo():
    """Hyper-VIB eq. (9) against E_q[log q - log p] by sampling."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.3, -0.8, 0.0]], dtype=torch.float64)
    theta = torch.tensor([[0.2, 0.5, 0.1]], dtype=torch.float64)
    noise_var = torch.tensor([[0.1]], dtype=torch.float64)
    std = (theta**2 + noise_var).sqrt()
    z = mu + std * torch.randn(400_000, 3, generator=gen, dtype=torch.float64)
    log_q = (-0.5 * ((z - mu) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(1)
    log_p = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(1)
    mc = (log_q - log_p).mean().item()
    assert gaussian_kl(mu, theta, noise_var).item() == pytest.approx(mc, abs=0.01)


def mixture_kl_monte_carlo(probs, levels, noise_var, n, rng):
    """KL(sum_k p_k N(q_k, s^2) || N(0,1)) for one dimension, by sampling (QML-IB eq. 13)."""
    comp = rng.choice(len(levels), size=n, p=probs)
    y = levels[comp] + math.sqrt(noise_var) * rng.standard_normal(n)
    dens = (probs * np.exp(-0.5 * (y[:, None] - levels) ** 2 / noise_var)).sum(1)
    log_mix = np.log(dens / math.sqrt(2 * math.pi * noise_var))
    log_p = -0.5 * y**2 - 0.5 * math.log(2 * math.pi)
    return float(np.mean(log_mix - log_p))


@pytest.mark.parametrize("seed", range(6))
def test_quantized_bound_is_above_true_mixture_kl(seed):
    rng = np.random.default_rng(seed)
    k = [2, 4, 16][seed % 3]
    levels = np.sort(rng.uniform(-1, 1, size=k))
    probs = rng.dirichlet(np.ones(k))
    noise_var = float(10 ** (-rng.uniform(0, 25) / 10))
    mc = mixture_kl_monte_carlo(probs, levels, noise_var, 200_000, rng)
    bound = quantized_kl_bound(
        torch.tensor(probs).view(1, 1, k), torch.tensor(levels), torch.tensor([[noise_var]])
    ).item()
    assert bound >= mc - 0.01  # MC error of a few 1e-3


def test_quantized_bound_with_one_level_equals_eq9():
    levels = torch.tensor([-1.0, 0.2, 1.0])
    probs = torch.tensor([[[0.0, 1.0, 0.0]]])
    nv = torch.tensor([[0.05]])
    expected = gaussian_kl(torch.tensor([[0.2]]), torch.zeros(1, 1), nv)
    torch.testing.assert_close(quantized_kl_bound(probs, levels, nv), expected)


def negative_kl_log_uniform_numeric(alpha: float) -> float:
    """-KL up to Molchanov's constant: 0.5 log α - E_{ε~N(1,α)} log|ε| - (γ_E + ln 2)/2."""
    std = math.sqrt(alpha)
    # integrate on a fine grid, splitting at the log singularity x = 0
    lo, hi = 1 - 12 * std, 1 + 12 * std
    xs = np.linspace(lo, hi, 4_000_001)
    xs = xs[np.abs(xs) > 1e-12]
    pdf = np.exp(-0.5 * ((xs - 1) / std) ** 2) / (std * math.sqrt(2 * math.pi))
    e_log = np.trapezoid(np.log(np.abs(xs)) * pdf, xs)
    return 0.5 * math.log(alpha) - e_log - (np.euler_gamma + math.log(2)) / 2


@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0, 10.0, 100.0])
def test_log_uniform_approximation_against_integration(alpha):
    """VL-VFE eq. (6) with α = σ²/γ² against numerical integration (fit error ~0.01)."""
    noise_var = torch.tensor([[alpha]], dtype=torch.float64)
    gamma = torch.ones(1, 1, dtype=torch.float64)
    approx = -log_uniform_kl(gamma, noise_var).item()
    assert approx == pytest.approx(negative_kl_log_uniform_numeric(alpha), abs=0.02)


def test_log_uniform_kl_vanishes_for_pruned_dimension():
    kl = log_uniform_kl(torch.tensor([[1e-6, 1.0]]), torch.tensor([[0.01]]))
    pruned_only = log_uniform_kl(torch.tensor([[1e-6]]), torch.tensor([[0.01]]))
    assert abs(pruned_only.item()) < 1e-6 and kl.item() > 1.0
    assert K1 == 0.63576
