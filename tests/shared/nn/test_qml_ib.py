"""QML-IB's paper models (Table I, eq. 18) and the VDDIB baseline's objective."""

from __future__ import annotations

import math

import pytest
import torch

from shared.nn.qml_ib import QmlIbModel
from shared.nn.vddib import VddibModel, quantize_uniform, uniform_levels


def test_table_i_networks_have_the_papers_sizes():
    model = QmlIbModel(n_links=2, d=24, bits=4)
    device = model.devices[0].fc
    assert (device.in_features, device.out_features) == (14 * 28, 2 * 24)  # μ and θ halves
    sizes = [m.out_features for m in model.server.net if isinstance(m, torch.nn.Linear)]
    assert sizes == [1024, 256, 10]
    assert model.server.net[0].in_features == 48
    assert model.quantizers[0].breakpoints().numel() == 15  # T = 15 for 4 bits


def test_symbols_are_levels_within_peak_power_at_inference():
    torch.manual_seed(0)
    model = QmlIbModel(2, 8, bits=2).eval()
    out = model(torch.randn(16, 1, 28, 28) * 3, noise_var=0.1)
    levels = model.quantizers[0].levels()
    assert out["symbols"].abs().max() <= 1.0 + 1e-6
    assert torch.isin(out["symbols"][:, 0], levels).all()


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="bits"):
        QmlIbModel(2, 8, bits=3)
    with pytest.raises(ValueError, match="n_links"):
        VddibModel(3, 8, bits=4)
    with pytest.raises(ValueError, match="d"):
        QmlIbModel(2, 0, bits=4)


def test_uniform_quantizer_takes_the_nearest_of_its_levels():
    levels = uniform_levels(2)  # -1, -1/3, 1/3, 1
    assert torch.allclose(levels, torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0]))
    mu = torch.tensor([[-0.9, -0.2, 0.1, 0.7]], requires_grad=True)
    q = quantize_uniform(mu, levels)
    assert torch.allclose(q["symbols"], torch.tensor([[-1.0, -1 / 3, 1 / 3, 1.0]]))
    assert torch.equal(q["assign"].argmax(-1), torch.tensor([[0, 1, 2, 3]]))
    q["symbols"].sum().backward()  # straight-through: identity gradient
    assert torch.allclose(mu.grad, torch.ones_like(mu))


def test_vddib_objective_against_hand_values():
    """Uniform logits everywhere: every cross-entropy is log 10; the uniform prior over the
    16 levels costs log 16 nats per dimension. Loss = log 10 + β·K·(log 10 + d·log 16)."""
    k, d, beta = 2, 3, 0.01
    model = VddibModel(k, d, bits=4)
    n = 5
    out = {
        "outputs": torch.zeros(n, 10),
        "aux": torch.zeros(n, k, 10),
        "rate": torch.full((n, k), d * math.log(16)),
        "symbols": torch.zeros(n, k, d),
    }
    y = torch.arange(n)
    loss = model.loss(out, y, torch.full((k,), beta))
    expected = math.log(10) + beta * k * (math.log(10) + d * math.log(16))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_vddib_rate_under_the_initial_uniform_prior_is_log_levels():
    model = VddibModel(2, 6, bits=4).train()
    out = model(torch.randn(4, 1, 28, 28), noise_var=0.1)
    assert torch.allclose(out["rate"], torch.full((4, 2), 6 * math.log(16)), atol=1e-5)


def test_vddib_trains_noise_free_unless_asked_and_tests_through_the_link():
    torch.manual_seed(0)
    x = torch.randn(8, 1, 28, 28)
    clean = VddibModel(2, 6, bits=4).train()
    a, b = clean(x, 0.5)["outputs"], clean(x, 0.5)["outputs"]
    assert torch.equal(a, b)  # deterministic encoder, no channel noise in training
    noisy = VddibModel(2, 6, bits=4, train_noise=True).train()
    assert not torch.equal(noisy(x, 0.5)["outputs"], noisy(x, 0.5)["outputs"])
    clean.eval()
    assert not torch.equal(clean(x, 0.5)["outputs"], clean(x, 0.5)["outputs"])


def test_ours_unquantized_rate_is_the_gaussian_kl_of_eq_6():
    """ẑ ~ N(μ, θ² + σ²) against N(0, 1) per dimension, here checked at one dimension's
    closed form with μ and θ read from the device."""
    torch.manual_seed(1)
    model = QmlIbModel(1, 1, bits=None).eval()
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        mu, theta = model.devices[0](x)
        out = model(x, noise_var=0.25)
    var = float(theta) ** 2 + 0.25
    expected = 0.5 * (float(mu) ** 2 + var - 1 - math.log(var))
    assert float(out["kl"]) == pytest.approx(expected, rel=1e-5)
