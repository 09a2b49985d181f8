"""The per-example loss weight w(β) of the VIB loss (DESIGN §9, issue 8 cause 1)."""

import pytest
import torch

from shared.nn.losses import beta_weight, vib_loss


def test_weights_per_mode():
    beta = torch.tensor([[1e-5], [1e-2], [1.0]])
    assert torch.equal(beta_weight(beta, 64, "none"), torch.ones(3))
    torch.testing.assert_close(
        beta_weight(beta, 64, "inverse-d-beta"), 1 / (1 + 64 * beta.view(-1))
    )
    torch.testing.assert_close(beta_weight(beta, 64, "inverse-beta"), 1 / beta.view(-1))
    with pytest.raises(ValueError, match="inverse-d-beta"):
        beta_weight(beta, 64, "balanced")


def test_weighted_loss_balances_small_and_large_beta_draws():
    """Unweighted, a β = 1 draw with KL = 100 nats outweighs a β = 1e-5 draw 40:1; weighted
    by 1/(1 + d·β) both are O(1)."""
    dist, kl = torch.tensor([2.5, 2.5]), torch.tensor([100.0, 100.0])
    beta = torch.tensor([[1e-5], [1.0]])
    per_example = dist + beta.view(-1) * kl
    assert per_example[1] / per_example[0] > 40
    weight = beta_weight(beta, 64, "inverse-d-beta")
    assert vib_loss(dist, kl, beta, weight) == pytest.approx(float((weight * per_example).mean()))
    assert (weight * per_example).max() < 3.0


def test_a_positive_weight_keeps_each_beta_optimum():
    """Per β, w(β) is a positive constant: the minimiser of w·(D + β·R) over a toy
    rate-distortion curve D = exp(-R) is the same with and without it."""
    rates = torch.linspace(0, 20, 20001)
    for beta in (1e-3, 1e-2, 1e-1):
        plain = rates[torch.argmin(torch.exp(-rates) + beta * rates)]
        w = beta_weight(torch.tensor([[beta]]), 64, "inverse-d-beta")
        weighted = rates[torch.argmin(w * (torch.exp(-rates) + beta * rates))]
        assert plain == weighted
