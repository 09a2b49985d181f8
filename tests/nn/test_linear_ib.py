"""Hyper-VIB Theorem 1: the hypernetwork reproduces the Gaussian-IB optimum A*(β)."""

import numpy as np
import pytest

from shared.nn.linear_ib import (
    LinearHyperEncoder,
    conditional_covariance,
    generalized_eig,
    gib_lagrangian,
    optimal_projection,
)

BETAS = np.logspace(-5, 0, 41)


def random_gaussian_pair(seed, n_x=5, n_y=3):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n_x, n_x))
    sigma_x = m @ m.T + 0.5 * np.eye(n_x)
    c = rng.normal(size=(n_y, n_x))
    sigma_n = 0.3 * np.eye(n_y)
    sigma_xy = sigma_x @ c.T
    sigma_y = c @ sigma_x @ c.T + sigma_n
    return sigma_x, conditional_covariance(sigma_x, sigma_xy, sigma_y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hypernetwork_reproduces_closed_form(seed):
    sigma_x, sigma_xgy = random_gaussian_pair(seed)
    lam, vecs = generalized_eig(sigma_xgy, sigma_x)
    hyper = LinearHyperEncoder(lam, vecs, sigma_x).double()
    for beta in BETAS:
        expected = optimal_projection(beta, lam, vecs, sigma_x)
        got = hyper.projection(beta).detach().numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("beta", [1e-3, 0.05, 0.3])
def test_closed_form_minimises_gib_lagrangian(seed, beta):
    """A*(β) beats random perturbations and the optimum of other β (catches a wrong constant)."""
    sigma_x, sigma_xgy = random_gaussian_pair(seed)
    lam, vecs = generalized_eig(sigma_xgy, sigma_x)
    a_star = optimal_projection(beta, lam, vecs, sigma_x)
    best = gib_lagrangian(a_star, beta, sigma_x, sigma_xgy)
    rng = np.random.default_rng(seed)
    for _ in range(200):
        delta = rng.normal(size=a_star.shape) * 0.05 * (1 + np.abs(a_star).max())
        assert gib_lagrangian(a_star + delta, beta, sigma_x, sigma_xgy) >= best - 1e-9
    for other in (beta * 3, beta / 3):
        a_other = optimal_projection(other, lam, vecs, sigma_x)
        assert gib_lagrangian(a_other, beta, sigma_x, sigma_xgy) > best


def test_eigenvalues_in_unit_interval_and_critical_beta():
    sigma_x, sigma_xgy = random_gaussian_pair(4)
    lam, vecs = generalized_eig(sigma_xgy, sigma_x)
    # λ = 1 for the directions that carry nothing about Y (n_x > n_y)
    assert np.all(lam > 0) and np.all(lam <= 1 + 1e-9)
    assert np.sum(lam > 1 - 1e-9) == 2
    # above the critical β_i = 1 - λ_i the i-th row switches off
    beta = 1.0 - lam[0] + 1e-3
    assert np.allclose(optimal_projection(beta, lam, vecs, sigma_x), 0.0)
