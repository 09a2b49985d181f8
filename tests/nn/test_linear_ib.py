"""Hyper-VIB Theorem 1: one β gate (u = -1, v = ln 2 + 2 ln‖B‖) reproduces A*(β)."""

import math

import numpy as np
import pytest
import torch

from shared.nn.linear_ib import (
    LinearHyperEncoder,
    conditional_covariance,
    generalized_eig,
    gib_lagrangian,
    optimal_projection,
    theorem1_gate_v,
)


def random_gaussian_model(seed, n_x=5, n_y=3, noise=0.3):
    """Σ_x, Σ_xy, Σ_y of X ~ N(0, Σ_x), Y = C X + N(0, noise·I)."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n_x, n_x))
    sigma_x = m @ m.T + 0.5 * np.eye(n_x)
    c = rng.normal(size=(n_y, n_x))
    sigma_xy = sigma_x @ c.T
    sigma_y = c @ sigma_x @ c.T + noise * np.eye(n_y)
    return sigma_x, sigma_xy, sigma_y


def random_gaussian_pair(seed, n_x=5, n_y=3, noise=0.3):
    sigma_x, sigma_xy, sigma_y = random_gaussian_model(seed, n_x, n_y, noise)
    return sigma_x, conditional_covariance(sigma_x, sigma_xy, sigma_y)


def chechik_projection(beta, sigma_x, sigma_x_given_y):
    """Chechik et al. (2005) Theorem 3.1, written independently of the module.

    Left eigenvectors v_i^T of Σ_{x|y} Σ_x^{-1} (non-symmetric eig), eigenvalues λ_i;
    α_i = sqrt((β_c(1 - λ_i) - 1)/(λ_i r_i)) with Chechik's β_c = 1/β (Hyper-VIB's β
    multiplies the rate). Rows ordered by λ ascending; [k, n].
    """
    lam, left = np.linalg.eig((sigma_x_given_y @ np.linalg.inv(sigma_x)).T)
    lam, left = lam.real, left.real
    order = np.argsort(lam)
    lam, left = lam[order], left[:, order]
    rows = []
    for i in range(len(lam)):
        v = left[:, i]
        r = v @ sigma_x @ v
        alpha_sq = (1.0 / beta * (1.0 - lam[i]) - 1.0) / (lam[i] * r)
        rows.append(math.sqrt(alpha_sq) * v if alpha_sq > 0 else np.zeros_like(v))
    return np.array(rows)


def relative_error(got, ref):
    """‖got - ref‖/‖ref‖ with each row's sign free (eigenvectors have no sign); ‖got‖ if ref = 0."""
    diff = np.minimum(
        np.linalg.norm(got - ref, axis=1) ** 2, np.linalg.norm(got + ref, axis=1) ** 2
    )
    ref_norm = np.linalg.norm(ref)
    return math.sqrt(diff.sum()) / ref_norm if ref_norm > 0 else np.linalg.norm(got)


def critical_betas(sigma_x, sigma_xgy):
    lam, _ = generalized_eig(sigma_xgy, sigma_x)
    return 1.0 - lam[lam < 1.0 - 1e-9]


def beta_grid(sigma_x, sigma_xgy):
    """[1e-5, 30] log-spaced plus both sides of every critical β (a row turns on there)."""
    crit = critical_betas(sigma_x, sigma_xgy)
    near = np.concatenate([crit * (1 - 1e-3), crit * (1 + 1e-3), crit * (1 - 0.05)])
    return np.sort(np.concatenate([np.logspace(-5, math.log10(30), 61), near]))


def hypernetwork(sigma_x, sigma_xgy):
    lam, vecs = generalized_eig(sigma_xgy, sigma_x)
    return LinearHyperEncoder(lam, vecs, sigma_x)


def worst_error(hyper, sigma_x, sigma_xgy):
    worst = 0.0
    for beta in beta_grid(sigma_x, sigma_xgy):
        got = hyper.projection(beta).detach().numpy()
        worst = max(worst, relative_error(got, chechik_projection(beta, sigma_x, sigma_xgy)))
    return worst


@pytest.mark.parametrize(("seed", "noise"), [(0, 0.3), (1, 0.3), (2, 10.0), (5, 100.0)])
def test_hypernetwork_reproduces_closed_form(seed, noise):
    """A(β) of the u = -1, v = ln 2 + 2 ln‖B‖ gate equals Chechik's A*(β) to 1e-10.

    A noisier Y spreads the critical β over (0, 1) (seed 2: 0.13-0.76, seed 5: 0.05-0.28)."""
    sigma_x, sigma_xgy = random_gaussian_pair(seed, noise=noise)
    hyper = hypernetwork(sigma_x, sigma_xgy)
    assert hyper.u.item() == -1.0
    assert worst_error(hyper, sigma_x, sigma_xgy) < 1e-10


@pytest.mark.parametrize("seed", [0, 3])
def test_hypernetwork_matches_closed_form_gram_matrix(seed):
    """A^T A (all the IB Lagrangian depends on; no sign freedom) agrees to 1e-10 too."""
    sigma_x, sigma_xgy = random_gaussian_pair(seed, n_x=6, n_y=4)
    hyper = hypernetwork(sigma_x, sigma_xgy)
    for beta in beta_grid(sigma_x, sigma_xgy):
        got = hyper.projection(beta).detach().numpy()
        ref = chechik_projection(beta, sigma_x, sigma_xgy)
        scale = max(np.linalg.norm(ref.T @ ref), 1e-300)
        assert np.linalg.norm(got.T @ got - ref.T @ ref) <= 1e-10 * scale


@pytest.mark.parametrize(
    ("u", "v_shift"), [(-1.0, None), (-0.9, 0.0), (-1.0, 0.05), (-1.1, 0.0)], ids=str
)
def test_wrong_gate_parameters_break_the_construction(u, v_shift):
    """v = 0, u = -0.9, u = -1.1 or a 5% change of e^v give large errors (the test can fail)."""
    sigma_x, sigma_xgy = random_gaussian_pair(0)
    hyper = hypernetwork(sigma_x, sigma_xgy)
    with torch.no_grad():
        hyper.u.fill_(u)
        if v_shift is None:
            hyper.v.fill_(0.0)
        else:
            hyper.v.add_(v_shift)
    assert worst_error(hyper, sigma_x, sigma_xgy) > 1e-2


def test_gate_v_is_ln2_plus_2_ln_norm_b():
    """‖B‖₂² = 1 - λ_1 for B = Σ_x^{-1/2} Σ_xy Σ_y^{-1/2}: v = ln 2 + 2 ln‖B‖₂."""
    sigma_x, sigma_xy, sigma_y = random_gaussian_model(4)

    def inv_sqrt(s):
        w, q = np.linalg.eigh(s)
        return q @ np.diag(w**-0.5) @ q.T

    b = inv_sqrt(sigma_x) @ sigma_xy @ inv_sqrt(sigma_y)
    lam, _ = generalized_eig(conditional_covariance(sigma_x, sigma_xy, sigma_y), sigma_x)
    norm_b = np.linalg.norm(b, 2)
    assert theorem1_gate_v(lam) == pytest.approx(math.log(2) + 2 * math.log(norm_b), abs=1e-12)
    # squared singular values of B are the critical β: 1 - λ_i
    sv = np.sort(np.linalg.svd(b, compute_uv=False) ** 2)
    np.testing.assert_allclose(sv, np.sort(1.0 - lam)[-len(sv) :], atol=1e-12)


def test_forward_is_projection_times_x():
    sigma_x, sigma_xgy = random_gaussian_pair(1)
    hyper = hypernetwork(sigma_x, sigma_xgy)
    x = torch.randn(3, 5, dtype=torch.float64)
    beta = torch.tensor([[1e-4], [0.05], [0.5]], dtype=torch.float64)
    out = hyper(x, beta)
    for n in range(3):
        expected = hyper.projection(beta[n, 0].item()) @ x[n]
        torch.testing.assert_close(out[n], expected, rtol=1e-12, atol=1e-12)


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


def test_module_closed_form_matches_chechik():
    sigma_x, sigma_xgy = random_gaussian_pair(2)
    lam, vecs = generalized_eig(sigma_xgy, sigma_x)
    for beta in beta_grid(sigma_x, sigma_xgy):
        got = optimal_projection(beta, lam, vecs, sigma_x)
        assert relative_error(got, chechik_projection(beta, sigma_x, sigma_xgy)) < 1e-10


def test_eigenvalues_in_unit_interval_and_critical_beta():
    sigma_x, sigma_xgy = random_gaussian_pair(4)
    lam, vecs = generalized_eig(sigma_xgy, sigma_x)
    # λ = 1 for the directions that carry nothing about Y (n_x > n_y)
    assert np.all(lam > 0) and np.all(lam <= 1 + 1e-9)
    assert np.sum(lam > 1 - 1e-9) == 2
    # above the critical β_i = 1 - λ_i the i-th row switches off
    beta = 1.0 - lam[0] + 1e-3
    assert np.allclose(optimal_projection(beta, lam, vecs, sigma_x), 0.0)
