"""VL-VFE's baselines and ablation as models: DeepJSCC's cross-entropy-only objective, the
learned Gaussian prior of §V-D, Table I's device network and Alg. 1's pruning."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from shared.nn.losses import learned_gaussian_kl, vib_loss
from shared.nn.model import CoInferenceModel, ModelConfig


def table_i(**overrides) -> CoInferenceModel:
    options = {"arch": "fc", "head": "deterministic", "d": 36, "beta_gate": False,
               "snr_scale": False, "prior": "none"} | overrides  # fmt: skip
    return CoInferenceModel(ModelConfig(**options))


def test_deepjscc_loss_is_cross_entropy_alone():
    """prior "none": the rate term is zero, so β·KL adds nothing and the gradient of the
    training loss is the gradient of the cross-entropy, computed here by hand from the logits."""
    torch.manual_seed(0)
    model = table_i()
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    beta, snr = torch.full((16, 1), 0.5), torch.full((16, 1), 20.0)
    torch.manual_seed(1)
    out = model(x, beta, snr)
    assert torch.equal(out["kl"], torch.zeros(16))
    loss = vib_loss(F.cross_entropy(out["outputs"], y, reduction="none"), out["kl"], beta)
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    torch.manual_seed(1)
    logits = model(x, beta, snr)["outputs"]
    by_hand = -(logits.log_softmax(dim=1)[torch.arange(16), y]).mean()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    for g, h, p in zip(grads, torch.autograd.grad(by_hand, list(model.parameters()),
                                                  allow_unused=True), model.parameters(),
                       strict=True):  # fmt: skip
        if h is None:
            assert g is None or torch.all(g == 0), p.shape
        else:
            torch.testing.assert_close(g, h)


def test_the_same_network_with_the_log_uniform_prior_has_a_rate_term():
    """The check above can fail: with VL-VFE's prior the KL is positive and the loss moves."""
    torch.manual_seed(0)
    model = table_i(prior="log-uniform")
    out = model(torch.rand(8, 1, 28, 28), torch.full((8, 1), 0.5), torch.full((8, 1), 20.0))
    assert torch.all(out["kl"] > 0)


def test_table_i_device_is_one_fully_connected_layer():
    """VL-VFE Table I: the device network is FC 784 -> n + tanh (plus γ, eq. 8), nothing else."""
    model = table_i(d=36)
    device = sum(p.numel() for p in model.encoder.parameters())
    assert device == 784 * 36 + 36 + 36  # weights, bias, γ
    x = torch.rand(4, 1, 28, 28)
    sent = model.encode(x, torch.ones(4, 1), torch.full((4, 1), 20.0))["symbols"]
    fc = model.encoder.projection.linear
    row = torch.cat([fc.weight, fc.bias[:, None]], 1)  # [w_i, b_i]
    unit_rows = row / row.norm(dim=1, keepdim=True)
    augmented = torch.cat([x.flatten(1), torch.ones(4, 1)], 1)  # [x; 1], eq. (7)
    by_hand = torch.tanh(model.encoder.gamma() * (augmented @ unit_rows.T))
    torch.testing.assert_close(sent, by_hand)


def test_alg_1_prunes_the_dimensions_below_gamma0():
    model = table_i(d=8, prune=True, gamma0=0.05, prior="log-uniform")
    with torch.no_grad():
        model.encoder.gamma_raw.copy_(torch.tensor([1.0, -0.5, 0.04, 0.2, -0.01, 0.06, 0.0, 3.0]))
    out = model.encode(torch.rand(3, 1, 28, 28), torch.ones(3, 1), torch.full((3, 1), 20.0))
    assert out["n_active"].tolist() == [5, 5, 5]  # |γ| > 0.05: dims 0, 1, 3, 5, 7
    assert torch.all(out["symbols"][:, [2, 4, 6]] == 0)
    # while training every dimension is sent (the paper's code masks only at test time) ...
    x, beta, snr = torch.rand(3, 1, 28, 28), torch.ones(3, 1), torch.full((3, 1), 20.0)
    assert model.train()(x, beta, snr)["n_active"].tolist() == [8, 8, 8]
    # ... and evaluated like the device
    assert model.eval()(x, beta, snr)["n_active"].tolist() == [5, 5, 5]
    with pytest.raises(ValueError, match="Alg. 1"):
        ModelConfig(head="deterministic", variable_length=True, prune=True)


def test_learned_gaussian_kl_matches_monte_carlo():
    """KL(N(z, σ²) || N(m, s²)) per dimension against a Monte-Carlo estimate of
    E[log p(ẑ) − log q(ẑ)] with ẑ ~ N(z, σ²)."""
    torch.manual_seed(0)
    z = torch.tensor([[0.3, -0.8, 0.0]])
    noise_var = torch.tensor([[0.01]])
    mean, log_var = torch.tensor([0.1, -0.5, 0.0]), torch.log(torch.tensor([0.2, 0.05, 0.01]))
    samples = z + noise_var.sqrt() * torch.randn(400_000, 3, dtype=torch.float64)
    log_p = -0.5 * ((samples - z) ** 2 / noise_var + torch.log(2 * math.pi * noise_var))
    log_q = -0.5 * ((samples - mean) ** 2 / log_var.exp() + torch.log(2 * math.pi * log_var.exp()))
    monte_carlo = (log_p - log_q).mean(0).sum().item()
    assert learned_gaussian_kl(z, noise_var, mean, log_var).item() == pytest.approx(
        monte_carlo, rel=5e-3)  # fmt: skip


def test_gaussian_prior_mean_and_variance_are_learned():
    """§V-D: "the mean value and covariance matrix are optimized in the training process"."""
    model = table_i(d=6, prior="gaussian-learned", prune=True)
    out = model(torch.rand(8, 1, 28, 28), torch.full((8, 1), 0.1), torch.full((8, 1), 20.0))
    out["kl"].mean().backward()
    assert model.prior_mean.grad.abs().sum() > 0 and model.prior_log_var.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="deterministic"):
        ModelConfig(head="gaussian", prior="gaussian-learned")


def test_a_variable_length_model_pays_for_its_pruned_dimensions_in_training():
    """VL-VFE's authors' code takes the eq. (6) rate of the encoder's output before the prune
    mask: while training, a dimension past the prefix costs what it would cost if sent (else
    the straight-through gradient brings it back for free). Evaluated, the rate is that of the
    symbols sent. Two copies of one model, one pruning nothing (γ0 = 0), one pruning most."""
    torch.manual_seed(0)
    keep_all = table_i(d=16, prior="log-uniform", variable_length=True, gamma0=0.0)
    prunes = table_i(d=16, prior="log-uniform", variable_length=True, gamma0=0.0)
    prunes.load_state_dict(keep_all.state_dict())
    x, beta, snr = torch.rand(6, 1, 28, 28), torch.full((6, 1), 0.01), torch.full((6, 1), 15.0)
    gamma = prunes.encoder(x, beta, snr, torch.full((6, 1), 10**-1.5))["gamma"].abs()
    prunes.config.gamma0 = float(gamma.detach().median())  # about half the dimensions fall below
    for training in (True, False):
        keep_all.train(training), prunes.train(training)
        torch.manual_seed(1)
        full = keep_all(x, beta, snr)
        torch.manual_seed(1)
        pruned = prunes(x, beta, snr)
        assert torch.all(pruned["n_active"] < 16) and torch.all(pruned["n_active"] > 0)
        assert torch.all(full["n_active"] == 16)
        if training:
            torch.testing.assert_close(pruned["kl"], full["kl"])
        else:
            assert torch.all(pruned["kl"] < full["kl"] - 1e-3)
