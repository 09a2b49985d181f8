"""QML-IB Theorem 2 numerics: the bound (19) against a value worked out by hand, D_KL by two
independent methods, Lemma 1, and the level pmf against the torch quantizer's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shared.nn.quantizer import LearnedQuantizer
from trainer.qml_theorem2 import (
    kl_monte_carlo,
    kl_quadrature,
    kl_star,
    level_pmf_log,
    theorem2_bound,
)


def test_bound_against_a_hand_worked_small_case():
    """T = 1 (levels ±1), d = 1, P = (1/2, 1/2), σ² = 1/4, by hand:
    C_t = 2·(1/2)·2·e^{-2/3} = 1.026834, log C = 0.026481 = C_0;
    ε = (1 + 1.5 + 4/3)²/(2/4) = 29.388889, log ε = 3.380617; C = 4.407097;
    C_max e^{-ε} ≈ 1.8e-13, so δ = 1/e; bound = (2/2)·C + 2/e = 4.407097 + 0.735759 = 5.142856."""
    log_pmf = np.log(np.array([[[0.5, 0.5]]]))
    bound = theorem2_bound(log_pmf, np.array([-1.0, 1.0]), 0.25)
    assert bound == pytest.approx([5.142856], abs=2e-6)


def test_bound_needs_noise_below_peak_power():
    with pytest.raises(ValueError, match="PSNR > 0 dB"):
        theorem2_bound(np.log(np.full((1, 1, 2), 0.5)), np.array([-1.0, 1.0]), 1.0)


def test_one_level_mixture_is_the_closed_form_gaussian_kl():
    """All mass on c = 0.6: D_KL = KL(N(0.6, σ²) || N(0, 1)) = ½(0.36 + σ² − 1 − log σ²)."""
    levels = np.array([-1.0, 0.6, 1.0])
    pmf = np.array([[[0.0, 1.0, 0.0]]])
    exact = 0.5 * (0.36 + 0.1 - 1 - math.log(0.1))
    assert kl_quadrature(pmf, levels, 0.1)[0] == pytest.approx(exact, abs=1e-6)
    assert kl_monte_carlo(pmf, levels, 0.1, samples=20000)[0] == pytest.approx(exact, abs=0.02)
    # D* adds log(T + 1) − H = log 3 for a one-hot pmf
    assert kl_star(pmf, levels, 0.1)[0] == pytest.approx(exact + math.log(3), abs=1e-9)


def test_monte_carlo_agrees_with_quadrature_and_lemma_1_holds():
    rng = np.random.default_rng(3)
    levels = np.linspace(-1, 1, 4)
    pmf = rng.dirichlet(np.ones(4), size=(6, 5))
    for var in (0.01, 0.1, 0.5):
        mc = kl_monte_carlo(pmf, levels, var, samples=4000)
        quad = kl_quadrature(pmf, levels, var)
        assert np.allclose(mc, quad, atol=0.05 * pmf.shape[1])
        assert (kl_star(pmf, levels, var) >= quad - 1e-9).all()  # Lemma 1


def test_level_pmf_matches_the_torch_quantizer_and_keeps_tails():
    quantizer = LearnedQuantizer(2)
    mu = torch.tensor([[-0.7, 0.0, 0.4]])
    theta = torch.tensor([[0.1, 0.3, 0.05]])
    with torch.no_grad():
        torch_p = quantizer.level_probabilities(mu, theta).double().numpy()
        breaks = quantizer.breakpoints().double().numpy()
    log_p = level_pmf_log(mu.double().numpy(), theta.double().numpy(), breaks)
    assert np.allclose(np.exp(log_p), torch_p, atol=1e-6)
    far = level_pmf_log(np.array([[-0.9]]), np.array([[0.01]]), breaks)
    assert np.isfinite(far).all() and far[0, 0, -1] < -1000  # no underflow to −inf
