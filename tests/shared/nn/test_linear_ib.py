"""Hyper-VIB Theorem 1 (eq. 18-29): W⁽²⁾ = 2U, W⁽¹⁾ = ‖B‖⁻²Σ·yXᵀ(XXᵀ)⁻¹, u⁽¹⁾ = -1,
v⁽¹⁾ = ln 2 + 2 ln‖B‖, u⁽²⁾ = v⁽²⁾ = 0 reproduce A*(β) of eq. (24) for every β.

The reference A*(β) is checked against the objective itself: autograd's gradient of eq. (22)
vanishes there and plain gradient descent on eq. (22) arrives at it, so neither the closed
form nor the construction is trusted on its own word.
"""

import math

import pytest
import torch

from shared.nn.linear_ib import (
    build_theorem1_device,
    decoder_svd,
    linear_vib_loss,
    optimal_device_map,
    theorem1_gate_v,
)

BETAS = [1e-6, 1e-3, 0.1, 0.5, 1.0, 2.0, 10.0, 1e3, 1e6]


def linear_problem(seed: int, n: int = 5, d: int = 3, n_examples: int = 400):
    """B [d, 1], X [n, N], y [1, N] with y a noisy linear function of x."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_examples, generator=gen, dtype=torch.float64)
    w = torch.randn(1, n, generator=gen, dtype=torch.float64)
    y = w @ x + 0.3 * torch.randn(1, n_examples, generator=gen, dtype=torch.float64)
    b = torch.randn(d, 1, generator=gen, dtype=torch.float64) * (0.5 + seed)
    return b, x, y


def relative_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    return float(torch.linalg.norm(got - ref) / torch.linalg.norm(ref))


@pytest.mark.parametrize(("seed", "d"), [(0, 1), (1, 3), (2, 6)])
def test_construction_reproduces_the_optimal_response_for_every_beta(seed, d):
    """eq. (29): W⁽²⁾(β)W⁽¹⁾(β) = A*(β) to 1e-10 over β from 1e-6 to 1e6 (d = 1 too).

    The reference uses (BBᵀ + cI)⁻¹B = B/(‖B‖² + c) (B is one column: BBᵀB = ‖B‖²B), exact
    and free of the SVD and the gates; a direct solve loses cond ≈ ‖B‖²/β ≈ 1e8 × 1e-16 at
    β = 1e-6, so ``optimal_device_map`` is held to 1e-6 only."""
    b, x, y = linear_problem(seed, d=d)
    device = build_theorem1_device(b, x, y)
    norm_sq = float(b.square().sum())
    ls = torch.linalg.lstsq(x.T, y.T).solution.T  # y Xᵀ(XXᵀ)⁻¹ [1, n]
    for beta in BETAS:
        reference = b @ ls / (norm_sq + 0.5 * beta)
        assert relative_error(device.projection(beta).detach(), reference) < 1e-10, beta
        assert relative_error(optimal_device_map(b, x, y, beta), reference) < 1e-6, beta


def test_the_network_is_the_paper_parameters():
    """The built device holds eq. (25)-(28) as written: no other operation between layers."""
    b, x, y = linear_problem(3, d=4)
    device = build_theorem1_device(b, x, y)
    u, sigma = decoder_svd(b)
    norm = float(torch.linalg.vector_norm(b))
    # B = UΣ (V = 1), U orthogonal, Σ = (‖B‖, 0, ...)
    torch.testing.assert_close(u @ sigma, b)
    torch.testing.assert_close(u.T @ u, torch.eye(4, dtype=b.dtype))
    assert sigma[0, 0].item() == pytest.approx(norm) and torch.all(sigma[1:] == 0)
    torch.testing.assert_close(device.layer2.linear.weight, 2 * u)
    assert torch.all(device.layer1.beta_gate.u == -1.0)
    assert torch.all(device.layer2.beta_gate.u == 0) and torch.all(device.layer2.beta_gate.v == 0)
    assert theorem1_gate_v(b) == pytest.approx(math.log(2) + 2 * math.log(norm), abs=1e-12)
    assert torch.all(device.layer1.linear.weight[1:] == 0)  # only Σ's first row is non-zero
    for layer in (device.layer1, device.layer2):
        assert torch.all(layer.linear.bias == 0)


@pytest.mark.parametrize("beta", [0.01, 1.0, 50.0])
def test_gated_weights_are_eq_27_and_28(beta):
    """W⁽¹⁾(β) = (ΣΣᵀ + ½β)⁻¹Σ·yXᵀ(XXᵀ)⁻¹ (its first row), W⁽²⁾(β) = U (sigmoid(0) = ½)."""
    b, x, y = linear_problem(4, d=3)
    device = build_theorem1_device(b, x, y)
    w1, w2 = device.gated_weights(beta)
    u, _ = decoder_svd(b)
    torch.testing.assert_close(w2, u)
    norm_sq = float(b.square().sum())
    ls = torch.linalg.lstsq(x.T, y.T).solution.T  # y Xᵀ(XXᵀ)⁻¹ by another route
    torch.testing.assert_close(w1[0], (math.sqrt(norm_sq) / (norm_sq + 0.5 * beta)) * ls[0])


@pytest.mark.parametrize("seed", [0, 2])
@pytest.mark.parametrize("beta", [0.05, 1.0, 20.0])
def test_closed_form_is_where_the_gradient_of_eq_22_vanishes(seed, beta):
    """∂C/∂A by autograd is ~0 at A*(β) and not at A*(β') for β' = 3β or β/3 (eq. 23-24)."""
    b, x, y = linear_problem(seed)

    def grad_at(a):
        a = a.clone().requires_grad_(True)
        linear_vib_loss(a, b, x, y, beta).backward()
        return a.grad

    a_star = optimal_device_map(b, x, y, beta)
    assert float(torch.linalg.norm(grad_at(a_star))) < 1e-10
    for other in (3 * beta, beta / 3):
        assert float(torch.linalg.norm(grad_at(optimal_device_map(b, x, y, other)))) > 1e-4


def test_gradient_descent_on_eq_22_arrives_at_the_closed_form():
    """A from zero, L-BFGS on C_VIB(A, B) with B fixed: converges to A*(β) (eq. 22 is convex)."""
    b, x, y = linear_problem(1)
    for beta in (0.1, 2.0):
        a = torch.zeros(b.shape[0], x.shape[0], dtype=x.dtype, requires_grad=True)
        opt = torch.optim.LBFGS(
            [a], lr=1.0, max_iter=2000, tolerance_grad=1e-15, tolerance_change=0.0
        )

        def closure(beta=beta, a=a, opt=opt):
            opt.zero_grad()
            loss = linear_vib_loss(a, b, x, y, beta)
            loss.backward()
            return loss

        opt.step(closure)
        assert relative_error(a.detach(), optimal_device_map(b, x, y, beta)) < 1e-6


# the paper's range of β (Hyper-VIB §IV-A: 1e-5 to 1), every half decade
PAPER_BETAS = [10 ** (-5 + 0.5 * k) for k in range(11)]


def eq23_gradient(a, b, x, y, beta):
    """∂C/∂A of eq. (23) as written: (1/N)·{-2B·y·Xᵀ + 2BBᵀ·A·XXᵀ + β·A·XXᵀ}."""
    xxt = x @ x.T
    return (-2 * b @ y @ x.T + 2 * b @ b.T @ a @ xxt + beta * a @ xxt) / x.shape[1]


def break_construction(device, break_it: str) -> None:
    """One deviation from eq. (25)-(28) in the built device."""
    with torch.no_grad():
        if break_it == "v_zero":
            device.layer1.beta_gate.v.zero_()
        elif break_it == "v_without_ln2":
            device.layer1.beta_gate.v.sub_(math.log(2))
        elif break_it == "u_minus_0.9":
            device.layer1.beta_gate.u.fill_(-0.9)
        elif break_it == "w2_is_u":
            device.layer2.linear.weight.mul_(0.5)
        else:
            device.layer2.beta_gate.u.fill_(-1.0)


def worst_gradient_over_paper_betas(device, b, x, y) -> float:
    """max over β ∈ [1e-5, 1] of ‖eq. (23) at the device's A(β)‖ / ‖eq. (23) at A = 0‖."""
    zero = torch.zeros(b.shape[0], x.shape[0], dtype=x.dtype)
    return max(
        float(torch.linalg.norm(eq23_gradient(device.projection(beta).detach(), b, x, y, beta)))
        / float(torch.linalg.norm(eq23_gradient(zero, b, x, y, beta)))
        for beta in PAPER_BETAS
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_construction_is_a_star_to_1e_9_over_the_papers_beta_range(seed):
    """N = 2000 ≫ n = 8: the construction equals eq. (24), solved directly (no SVD, no gates),
    to 1e-9 relative at every half decade of β ∈ [1e-5, 1]."""
    b, x, y = linear_problem(seed, n=8, d=4, n_examples=2000)
    device = build_theorem1_device(b, x, y)
    for beta in PAPER_BETAS:
        got = device.projection(beta).detach()
        assert relative_error(got, optimal_device_map(b, x, y, beta)) < 1e-9, beta


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eq_23_gradient_vanishes_at_the_construction(seed):
    """Eq. (23) written out, and autograd's gradient of eq. (22), are zero at the network's
    A(β) for β ∈ [1e-5, 1]: below 1e-9 of their size at A = 0."""
    b, x, y = linear_problem(seed, n=8, d=4, n_examples=2000)
    device = build_theorem1_device(b, x, y)
    assert worst_gradient_over_paper_betas(device, b, x, y) < 1e-9
    for beta in (1e-5, 1e-2, 1.0):  # eq. (23) is the gradient of eq. (22)
        a = device.projection(beta).detach().clone().requires_grad_(True)
        linear_vib_loss(a, b, x, y, beta).backward()
        torch.testing.assert_close(a.grad, eq23_gradient(a.detach(), b, x, y, beta))


@pytest.mark.parametrize(
    "break_it",
    ["v_zero", "v_without_ln2", "u_minus_0.9", "w2_is_u", "layer2_gate_on"],
)
def test_other_parameters_do_not_reproduce_a_star(break_it):
    """Each deviation from eq. (25)-(28), v⁽¹⁾ = 0 and u⁽¹⁾ = -0.9 among them, fails both
    checks above: it misses A*(β) by more than 1% and eq. (23) is far from zero somewhere."""
    b, x, y = linear_problem(0, n=8, d=4, n_examples=2000)
    device = build_theorem1_device(b, x, y)
    break_construction(device, break_it)
    worst = max(
        relative_error(device.projection(beta).detach(), optimal_device_map(b, x, y, beta))
        for beta in BETAS + PAPER_BETAS
    )
    assert worst > 1e-2
    if break_it in ("v_zero", "v_without_ln2", "u_minus_0.9"):  # visible inside [1e-5, 1]
        assert worst_gradient_over_paper_betas(device, b, x, y) > 1e-3


def test_a_beta_free_network_cannot_follow_a_star():
    """Without β modules one A serves every β: it misses A*(β) at β = 0.01 or β = 100."""
    b, x, y = linear_problem(0)
    a_small, a_large = (optimal_device_map(b, x, y, beta) for beta in (0.01, 100.0))
    assert relative_error(a_small, a_large) > 0.5


def test_forward_is_projection_times_x_per_example():
    b, x, y = linear_problem(2, d=3)
    device = build_theorem1_device(b, x, y)
    inputs = torch.randn(3, 5, dtype=torch.float64)
    beta = torch.tensor([[1e-4], [0.5], [30.0]], dtype=torch.float64)
    out = device(inputs, beta)
    stacked = device.projection(beta.view(-1))
    assert stacked.shape == (3, 3, 5)
    for k in range(3):
        torch.testing.assert_close(out[k], stacked[k] @ inputs[k], rtol=1e-12, atol=1e-12)


def test_loss_of_stacked_maps_matches_one_by_one():
    """linear_vib_loss over [K, d, n] equals K separate calls (used to score many β at once)."""
    b, x, y = linear_problem(3)
    betas = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    maps = torch.stack([optimal_device_map(b, x, y, float(beta)) for beta in betas])
    together = linear_vib_loss(maps, b, x, y, betas)
    apart = torch.stack([linear_vib_loss(maps[k], b, x, y, float(betas[k])) for k in range(3)])
    torch.testing.assert_close(together, apart)


def test_descent_on_eq_22_over_sampled_beta_recovers_the_gate():
    """From the fresh-gate start u = 0, v = 4, with B, W⁽¹⁾, W⁽²⁾ and the second gate fixed,
    minimising the mean of eq. (22) over sampled β learns u⁽¹⁾ -> -1, v⁽¹⁾ -> ln 2 + 2 ln‖B‖."""
    b, x, y = linear_problem(1, d=3)
    device = build_theorem1_device(b, x, y)
    gate = device.layer1.beta_gate
    with torch.no_grad():
        gate.u.zero_()
        gate.v.fill_(4.0)
    for p in device.parameters():
        p.requires_grad_(False)
    gate.u.requires_grad_(True)
    gate.v.requires_grad_(True)
    gen = torch.Generator().manual_seed(0)
    norm_sq = float(b.square().sum())
    # β around the gate's midpoint 2‖B‖², log-uniform over four decades either side
    betas = 2 * norm_sq * torch.exp(torch.empty(64, dtype=x.dtype).uniform_(-9, 9, generator=gen))
    opt = torch.optim.LBFGS([gate.u, gate.v], lr=1.0, max_iter=500, tolerance_change=0.0)

    def closure():
        opt.zero_grad()
        loss = linear_vib_loss(device.projection(betas), b, x, y, betas).mean()
        loss.backward()
        return loss

    opt.step(closure)
    # rows 2..d of W⁽¹⁾ are zero, so only the first row's gate is determined
    assert gate.u[0].item() == pytest.approx(-1.0, abs=1e-2)
    assert gate.v[0].item() == pytest.approx(theorem1_gate_v(b), abs=1e-2)
