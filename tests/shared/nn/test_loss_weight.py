"""The per-example loss weight w(β) of the VIB loss (DESIGN §9)."""

import pytest
import torch

from shared.nn.losses import beta_weight, vib_loss


def test_weights_per_mode():
    """d = 64, β = (1e-5, 1e-2, 1), worked by hand: 1/(1 + 64β) = 1/1.00064, 1/1.64, 1/65;
    1/β = 1e5, 100, 1."""
    beta = torch.tensor([[1e-5], [1e-2], [1.0]])
    assert torch.equal(beta_weight(beta, 64, "none"), torch.ones(3))
    torch.testing.assert_close(
        beta_weight(beta, 64, "inverse-d-beta"), torch.tensor([0.99936041, 0.60975610, 0.01538462])
    )
    torch.testing.assert_close(beta_weight(beta, 64, "inverse-beta"), torch.tensor([1e5, 100, 1]))
    with pytest.raises(ValueError, match="inverse-d-beta"):
        beta_weight(beta, 64, "balanced")


def test_weighted_loss_on_numbers_worked_by_hand():
    """d = 64, β = (1e-5, 1), distortion 2.5, KL 100: w = (1/1.00064, 1/65), the draws' losses
    (2.501, 102.5), weighted mean (2.499401 + 1.576923)/2 = 2.0381617; unweighted 52.5005."""
    dist, kl = torch.tensor([2.5, 2.5]), torch.tensor([100.0, 100.0])
    beta = torch.tensor([[1e-5], [1.0]])
    weight = beta_weight(beta, 64, "inverse-d-beta")
    assert float(vib_loss(dist, kl, beta, weight)) == pytest.approx(2.0381617, rel=1e-6)
    assert float(vib_loss(dist, kl, beta)) == pytest.approx(52.5005, rel=1e-6)


@pytest.mark.parametrize(("mode", "rate"), [("none", 2.9857819), ("inverse-d-beta", 4.3091346)])
def test_the_weight_moves_the_optimum_of_shared_parameters(mode, rate):
    """One rate r shared by two β (a model without capacity per β): minimising
    Σ_β w(β)·(e^-r + β·r) gives e^-r = Σ w β / Σ w, so r = 2.986 nats unweighted (the paper's
    eq. 16) and 4.309 with w = 1/(1 + 64β), β = 1e-3 and 0.1 (worked by hand). A positive
    weight keeps each β's optimum only when every β has its own parameters."""
    beta = torch.tensor([[1e-3], [1e-1]])
    weight = beta_weight(beta, 64, mode)
    r = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([r], lr=1.0, max_iter=200, tolerance_change=0.0)

    def closure():
        opt.zero_grad()
        loss = vib_loss(torch.exp(-r).expand(2), r.expand(2), beta, weight)
        loss.backward()
        return loss

    opt.step(closure)
    assert r.item() == pytest.approx(rate, abs=1e-4)


def test_knee_weight_on_numbers_worked_by_hand():
    """knee 1e-3, β = (1e-5, 1e-3, 1): w = 1/1.01, 1/2, 1/1001; knee 1/64 is inverse-d-beta."""
    beta = torch.tensor([[1e-5], [1e-3], [1.0]])
    torch.testing.assert_close(
        beta_weight(beta, 64, "knee", knee=1e-3), torch.tensor([0.99009901, 0.5, 0.000999001])
    )
    torch.testing.assert_close(
        beta_weight(beta, 64, "knee", knee=1 / 64), beta_weight(beta, 64, "inverse-d-beta")
    )
    for bad in (None, 0.0, -1e-3):
        with pytest.raises(ValueError, match="knee"):
            beta_weight(beta, 64, "knee", knee=bad)


def test_train_config_refuses_a_knee_weight_without_a_knee():
    from trainer.train import TrainConfig

    with pytest.raises(ValueError, match="weight_knee"):
        TrainConfig.from_options(loss_weight="knee")
    assert TrainConfig.from_options(loss_weight="knee", weight_knee=3e-4).weight_knee == 3e-4
