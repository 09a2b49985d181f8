import numpy as np
import pytest
import torch

from shared import channel
from shared.nn.channel import awgn, awgn_sent, noise_var_from_snr
from shared.nn.model import CoInferenceModel, ModelConfig
from shared.nn.variable_length import VariableLengthImportance, active_mask


@pytest.mark.parametrize("psnr", [0.0, 10.0, 25.0])
def test_empirical_noise_variance_matches_psnr(psnr):
    torch.manual_seed(0)
    symbols = torch.sign(torch.randn(2000, 64))  # peak-1 symbols
    y = awgn(symbols, torch.full((2000, 1), psnr))
    assert (y - symbols).var().item() == pytest.approx(10 ** (-psnr / 10), rel=0.02)
    rng = np.random.default_rng(0)
    y_np = channel.awgn(symbols.numpy(), psnr, rng)
    assert np.var(y_np - symbols.numpy()) == pytest.approx(10 ** (-psnr / 10), rel=0.02)


def test_numpy_and_torch_psnr_conventions_agree():
    snr = np.array([0.0, 3.0, 17.5, 25.0])
    np.testing.assert_allclose(
        channel.noise_var_from_psnr(snr), noise_var_from_snr(torch.tensor(snr)).numpy()
    )
    np.testing.assert_allclose(channel.psnr_from_noise_var(channel.noise_var_from_psnr(snr)), snr)
    # the per-request scalar path gives the same numbers as the array path
    scalars = [channel.noise_var_from_psnr(float(v)) for v in snr]
    assert all(isinstance(v, float) for v in scalars)
    np.testing.assert_allclose(scalars, channel.noise_var_from_psnr(snr), rtol=1e-15)


def test_pilot_estimate_is_unbiased():
    rng = np.random.default_rng(1)
    pilots = channel.pilot_symbols(64)
    estimates = [
        channel.estimate_noise_var(channel.awgn(pilots, 10.0, rng), pilots) for _ in range(2000)
    ]
    assert np.mean(estimates) == pytest.approx(0.1, rel=0.01)


def test_importance_is_a_prefix_that_shortens_as_snr_rises():
    torch.manual_seed(0)
    module = VariableLengthImportance(32)
    snr = torch.linspace(0, 25, 11).view(-1, 1)
    gamma = module(noise_var_from_snr(snr))
    assert torch.all(gamma[:, 1:] <= gamma[:, :-1] + 1e-7)  # non-increasing along d
    assert torch.all(gamma[1:] < gamma[:-1])  # strictly falls as the SNR rises
    n_active = active_mask(gamma, 0.02).sum(1)
    assert n_active[0] > n_active[-1]  # the initial prefix already follows the PSNR
    for row, k in zip(active_mask(gamma, 0.02), n_active.long(), strict=True):
        assert torch.all(row[:k] == 1) and torch.all(row[k:] == 0)


def test_importance_vanishes_on_a_noiseless_channel():
    """App. B: g is bias-free, so g(σ) -> 0 and no dimension is needed as σ -> 0."""
    module = VariableLengthImportance(16)
    gamma = module(torch.tensor([[0.0], [1e-12]]))
    assert torch.all(gamma[0] == 0)
    assert gamma[1].max() < 1e-4


def test_importance_beta_gate_shortens_prefix_as_beta_rises():
    torch.manual_seed(0)
    module = VariableLengthImportance(32, beta_gate=True)
    with torch.no_grad():
        module.beta_gate.u.fill_(-1.0)  # gate falls with β
    betas = torch.logspace(-5, 0, 11).view(-1, 1)
    gamma = module(torch.full_like(betas, 0.1), betas)
    assert torch.all(gamma[1:] < gamma[:-1])


def test_encoder_symbols_peak_at_most_one_and_prefix_sent():
    torch.manual_seed(0)
    for kwargs in (
        {},
        {"head": "deterministic", "prior": "log-uniform", "variable_length": True},
        {"bits": 2},
    ):
        model = CoInferenceModel(ModelConfig(**kwargs)).eval()
        x = torch.randn(16, 1, 28, 28) * 3
        out = model.encode(x, torch.full((16, 1), 1e-3), torch.full((16, 1), 5.0))
        assert out["symbols"].abs().max() <= 1.0 + 1e-6
        for row, k in zip(out["symbols"], out["n_active"], strict=True):
            assert torch.all(row[int(k) :] == 0)


def test_invalid_modes_raise():
    with pytest.raises(ValueError, match="prior"):
        ModelConfig(prior="laplace")
    with pytest.raises(ValueError, match="log-uniform"):
        ModelConfig(prior="log-uniform", head="gaussian")
    with pytest.raises(ValueError, match="variable_length"):
        CoInferenceModel(ModelConfig(variable_length=True))


def _vl_model(**kwargs) -> CoInferenceModel:
    config = {"head": "deterministic", "prior": "log-uniform", "variable_length": True}
    return CoInferenceModel(ModelConfig(**{**config, **kwargs}))


@pytest.mark.parametrize("training", [True, False])
def test_unsent_dimensions_reach_the_decoder_as_zeros(training):
    """Only the active prefix crosses the channel: past it the decoder gets exactly zero, as
    the edge zero-fills what a variable-length transmission did not send; the prefix is noisy."""
    torch.manual_seed(0)
    model = _vl_model(gamma0=0.3).train(training)
    x = torch.randn(32, 1, 28, 28)
    out = model.transmit(x, torch.full((32, 1), 1e-3), torch.full((32, 1), 5.0))
    n_active = out["n_active"].long()
    assert 0 < int(n_active.min()) and int(n_active.max()) < model.config.d  # some are pruned
    for row, sent, k in zip(out["received"], out["symbols"], n_active, strict=True):
        assert torch.all(row[int(k) :] == 0)
        assert torch.all(row[: int(k)] != sent[: int(k)])  # noise on every sent dimension


def test_a_pruned_dimension_still_gets_its_gradient():
    """The mask is straight-through (VL-VFE's code): zeroing the unsent received symbols must
    not cut the gradient that tells a pruned dimension whether to come back."""
    torch.manual_seed(0)
    model = _vl_model(gamma0=0.3).train()
    out = model.transmit(
        torch.randn(8, 1, 28, 28), torch.full((8, 1), 1e-3), torch.full((8, 1), 5.0)
    )
    assert int(out["n_active"].min()) < model.config.d
    (grad,) = torch.autograd.grad(out["received"].sum(), out["symbols"])
    assert torch.all(grad == 1)


def test_fixed_length_models_get_noise_on_every_dimension():
    torch.manual_seed(0)
    model = CoInferenceModel(ModelConfig()).train()
    out = model.transmit(
        torch.randn(8, 1, 28, 28), torch.full((8, 1), 1e-3), torch.full((8, 1), 5.0)
    )
    assert torch.all(out["received"] != out["symbols"])


def test_awgn_sent_zero_fills_past_the_prefix():
    n_active = torch.tensor([4, 2, 6])
    symbols = 0.5 * (torch.arange(6) < n_active[:, None]).float()  # zero past each prefix
    received = awgn_sent(symbols, 0.3, n_active, torch.Generator().manual_seed(0))
    for row, sent, k in zip(received, symbols, n_active.tolist(), strict=True):
        assert torch.all(row[k:] == 0)  # (row 2 sends all six: nothing past its prefix)
        assert torch.all(row[:k] != sent[:k])
    # every dimension sent: the same draw as no prefix at all, to the bit
    full = awgn_sent(symbols, 0.3, torch.full((3,), 6), torch.Generator().manual_seed(1))
    plain = awgn_sent(symbols, 0.3, None, torch.Generator().manual_seed(1))
    assert torch.equal(full, plain)
    assert float((plain - symbols).std()) == pytest.approx(0.3, rel=0.5)
