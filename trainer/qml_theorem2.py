"""QML-IB Theorem 2 evaluated numerically: the bound (19) on D*_KL − D_KL, and the gap itself.

Given x, dimension i of the received feature is the Gaussian mixture of eq. (13),
p_i(ẑ) = Σ_t P_it·N(ẑ; c_t, σ²), with level pmf P_it (eq. 10–11) over the T + 1 levels c_t,
and r = N(0, 1). Per example (all NumPy, float64):

- ``kl_star``: D*_KL as trained (shared/nn/losses.quantized_kl_bound "eq14"): the Log-Sum
  bound of App. A, Σ_i [log(T+1) − H(P_i) + Σ_t P_it·KL(N(c_t, σ²) || N(0, 1))]. (Eq. 14 as
  printed has Σ_t P_it·c_t² where the Gaussian KL gives ½·Σ_t P_it·c_t²; the printed form is
  larger by ½·Σ_i Σ_t P_it·c_t², so every gap below would only grow with it.)
- ``kl_monte_carlo``: D_KL = Σ_i E_{p_i}[log p_i(ẑ) − log r(ẑ)], the expectation taken level
  by level (exact over the level, Monte-Carlo over the noise with ``samples`` draws).
- ``kl_quadrature``: the same D_KL by the trapezoid rule on a fine grid (a cross-check).
- ``theorem2_bound``: (19), 2Td/(T+1)·C + 2dδ, with the constants of App. B as printed:
  C_it = (T+1)·P_it·(1/σ)·exp(−c_t²/(2(1−σ²))), C_0 = max(|log C_min|, |log C_max|),
  ε = (1 + 3σ + 1/(1−σ²))²/(2σ²), δ = max(1/e, |C_max e^{−ε}·log(C_max e^{−ε})|),
  C = C_0 + log ε + 1. It needs σ < 1 (PSNR > 0 dB); log C is taken in log space, so a level
  of vanishing probability gives a large but finite C_0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr, logsumexp

LOG_2PI = math.log(2 * math.pi)


def level_pmf_log(mu: np.ndarray, theta: np.ndarray, breakpoints: np.ndarray) -> np.ndarray:
    """log P_it of eq. (10)–(11) for z ~ N(mu, theta²): mu, theta [N, d]; breakpoints [T]
    ascending -> [N, d, T + 1], computed in log space (tails do not underflow to −inf)."""
    u = (np.asarray(breakpoints)[None, None, :] - mu[..., None]) / theta[..., None]
    lo = np.concatenate([np.full(u.shape[:-1] + (1,), -np.inf), u], axis=-1)
    hi = np.concatenate([u, np.full(u.shape[:-1] + (1,), np.inf)], axis=-1)
    # P = Φ(hi) − Φ(lo); use the upper tail where both are above 0 for accuracy
    upper = lo > 0
    a = np.where(upper, log_ndtr(-lo), log_ndtr(hi))  # the larger of the two CDF terms
    b = np.where(upper, log_ndtr(-hi), log_ndtr(lo))
    with np.errstate(divide="ignore"):
        return a + np.log1p(-np.exp(np.minimum(b - a, 0.0)))


def _per_level_kl(levels: np.ndarray, noise_var: float) -> np.ndarray:
    return 0.5 * (levels**2 + noise_var - 1.0 - math.log(noise_var))


def kl_star(pmf: np.ndarray, levels: np.ndarray, noise_var: float) -> np.ndarray:
    """D*_KL per example (App. A's Log-Sum bound); pmf [N, d, T+1] -> [N] nats."""
    n_levels = pmf.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(pmf > 0, pmf * np.log(pmf), 0.0)
    per_dim = math.log(n_levels) + plogp.sum(-1) + pmf @ _per_level_kl(levels, noise_var)
    return per_dim.sum(-1)


def _log_mixture_ratio(zhat, pmf, levels, noise_var):
    """log p_i(ẑ) − log r(ẑ) for ẑ [..., S] and pmf [..., T+1] (broadcast over leading dims)."""
    sq = (zhat[..., None] - levels) ** 2 / noise_var  # [..., S, T+1]
    with np.errstate(divide="ignore"):
        log_w = np.log(pmf)[..., None, :]
    log_p = logsumexp(log_w - 0.5 * sq, axis=-1) - 0.5 * (LOG_2PI + math.log(noise_var))
    return log_p + 0.5 * (LOG_2PI + zhat**2)


def kl_monte_carlo(pmf, levels, noise_var: float, samples: int = 512, seed: int = 0):
    """D_KL per example [N]: exact over the level, ``samples`` noise draws per level."""
    rng = np.random.default_rng(seed)
    noise = math.sqrt(noise_var) * rng.standard_normal(samples)
    zhat = levels[:, None] + noise[None, :]  # [T+1, S]
    out = np.zeros(pmf.shape[0])
    for t in range(len(levels)):
        g = _log_mixture_ratio(np.broadcast_to(zhat[t], pmf.shape[:-1] + (samples,)), pmf,
                               levels, noise_var)  # fmt: skip
        out += (pmf[..., t] * g.mean(-1)).sum(-1)
    return out


def kl_quadrature(pmf, levels, noise_var: float, points: int = 4001) -> np.ndarray:
    """D_KL per example [N] by the trapezoid rule on [−1 − 10σ, 1 + 10σ]."""
    sigma = math.sqrt(noise_var)
    grid = np.linspace(levels.min() - 10 * sigma, levels.max() + 10 * sigma, points)
    dens = np.exp(-0.5 * (grid[:, None] - levels) ** 2 / noise_var) / math.sqrt(
        2 * math.pi * noise_var
    )  # [G, T+1]
    p = pmf @ dens.T  # [N, d, G]
    g = _log_mixture_ratio(np.broadcast_to(grid, pmf.shape[:-1] + (points,)), pmf, levels,
                           noise_var)  # fmt: skip
    return np.trapezoid(p * g, grid, axis=-1).sum(-1)


def theorem2_bound(log_pmf: np.ndarray, levels: np.ndarray, noise_var: float) -> np.ndarray:
    """The right-hand side of (19) per example [N], from log P_it [N, d, T+1] and σ²."""
    if not 0.0 < noise_var < 1.0:
        raise ValueError(f"Theorem 2 needs 0 < σ² < 1 (PSNR > 0 dB), got σ² = {noise_var}")
    d, n_levels = log_pmf.shape[1], log_pmf.shape[2]
    t_breaks = n_levels - 1
    sigma = math.sqrt(noise_var)
    log_c = (math.log(n_levels) + log_pmf - math.log(sigma)
             - levels**2 / (2 * (1 - noise_var)))  # fmt: skip
    log_c_max = log_c.max(axis=(1, 2))
    log_c_min = log_c.min(axis=(1, 2))
    c0 = np.maximum(np.abs(log_c_min), np.abs(log_c_max))
    eps = (1 + 3 * sigma + 1 / (1 - noise_var)) ** 2 / (2 * noise_var)
    log_tail = log_c_max - eps  # log(C_max e^{−ε})
    delta = np.maximum(1 / math.e, np.abs(np.exp(log_tail) * log_tail))
    c = c0 + math.log(eps) + 1
    return 2 * t_breaks * d / (t_breaks + 1) * c + 2 * d * delta
