import numpy as np
import pytest
import torch

from shared import quantizer as np_quantizer
from shared.nn.quantizer import LearnedQuantizer


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_hard_output_takes_exactly_2_pow_bits_values(bits):
    torch.manual_seed(bits)
    q = LearnedQuantizer(bits)
    with torch.no_grad():
        q.raw_amplitudes.normal_()
        q.raw_steps.add_(0.1 * torch.randn_like(q.raw_steps))
    x = torch.linspace(-1.5, 1.5, 200_001)
    values = torch.unique(q.hard(x))
    assert len(values) == 2**bits
    assert values.min() >= -1 - 1e-6 and values.max() <= 1 + 1e-6
    torch.testing.assert_close(values, q.levels().detach())


def test_soft_form_approaches_hard_as_gamma_grows():
    q = LearnedQuantizer(2)
    x = torch.linspace(-1, 1, 5001)
    hard = q.hard(x)
    errors = [(q.soft(x, gamma=g) - hard).abs().mean().item() for g in (10, 100, 1000, 10000)]
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 1e-3


def test_train_mode_soft_and_eval_hard():
    q = LearnedQuantizer(1)
    x = torch.tensor([0.05])
    q.train()
    assert abs(q(x).item()) < 0.5  # soft: arctan(10·0.05)·2/π ≈ 0.30
    q.eval()
    assert q(x).item() == pytest.approx(1.0)


def test_numpy_twin_matches_torch():
    torch.manual_seed(3)
    q = LearnedQuantizer(4)
    with torch.no_grad():
        q.raw_amplitudes.normal_()
    x = torch.rand(10_000) * 2.4 - 1.2
    b = q.breakpoints().detach().numpy()
    levels = q.levels().detach().numpy()
    assert np.array_equal(np_quantizer.level_indices(x.numpy(), b), q.indices(x).numpy())
    np.testing.assert_allclose(
        np_quantizer.quantize(x.numpy(), b, levels), q.hard(x).detach().numpy(), atol=1e-6
    )


def test_level_probabilities_sum_to_one_and_match_sampling():
    q = LearnedQuantizer(2)
    mu, std = torch.tensor([0.1]), torch.tensor([0.4])
    probs = q.level_probabilities(mu, std)[0]
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    z = mu + std * torch.randn(200_000, generator=torch.Generator().manual_seed(0))
    empirical = torch.bincount(q.indices(z), minlength=4).float() / len(z)
    torch.testing.assert_close(probs, empirical, atol=5e-3, rtol=0)


def test_bad_bits_raise():
    with pytest.raises(ValueError, match="bits must be one of"):
        LearnedQuantizer(3)
    with pytest.raises(ValueError, match="bits must be one of"):
        np_quantizer.check_bits(3)
