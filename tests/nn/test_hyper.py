import pytest
import torch
from torch import nn

from shared.nn.hyper import HyperConv2d, HyperLinear


def test_gates_off_equals_linear():
    torch.manual_seed(0)
    layer = HyperLinear(7, 5, beta_gate=False, snr_scale=False)
    plain = nn.Linear(7, 5)
    plain.load_state_dict(layer.linear.state_dict())
    x = torch.randn(4, 7)
    assert torch.equal(layer(x), plain(x))


def test_gates_off_equals_conv2d():
    torch.manual_seed(0)
    layer = HyperConv2d(3, 4, 3, padding=1, beta_gate=False, snr_scale=False)
    plain = nn.Conv2d(3, 4, 3, padding=1)
    plain.load_state_dict(layer.conv.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(layer(x), plain(x))


def test_gate_values_follow_the_equations():
    layer = HyperLinear(3, 2)
    with torch.no_grad():
        layer.beta_gate.u.copy_(torch.tensor([0.5, -1.0]))
        layer.beta_gate.v.copy_(torch.tensor([1.0, 0.0]))
        layer.snr_scale.omega.copy_(torch.tensor([2.0, 0.0]))
        layer.snr_scale.c.copy_(torch.tensor([0.5, 3.0]))
    beta = torch.tensor([[1e-3]])
    snr = torch.tensor([[12.5]])
    x = torch.randn(1, 3)
    gate = torch.sigmoid(torch.log(beta) * layer.beta_gate.u + layer.beta_gate.v)
    scale = (12.5 / 25.0) * layer.snr_scale.omega + layer.snr_scale.c
    expected = layer.linear(x) * gate * scale
    torch.testing.assert_close(layer(x, beta, snr), expected)


def test_per_example_conditions_shapes():
    layer = HyperConv2d(1, 6, 3, stride=2, padding=1)
    beta = torch.logspace(-5, 0, 4).view(4, 1)
    snr = torch.tensor([[0.0], [5.0], [20.0], [25.0]])
    out = layer(torch.randn(4, 1, 28, 28), beta, snr)
    assert out.shape == (4, 6, 14, 14)
    # different β per example gives different outputs for the same input
    same_x = torch.randn(1, 1, 28, 28).expand(4, -1, -1, -1)
    with torch.no_grad():
        layer.beta_gate.u.fill_(0.3)
    out = layer(same_x, beta, torch.full((4, 1), 10.0))
    assert not torch.allclose(out[0], out[3])


def test_gradients_reach_gate_parameters():
    layer = HyperLinear(4, 3)
    out = layer(torch.randn(5, 4), torch.full((5, 1), 1e-2), torch.full((5, 1), 10.0))
    out.square().sum().backward()
    for name in ("beta_gate.u", "beta_gate.v", "snr_scale.omega", "snr_scale.c"):
        grad = dict(layer.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_missing_condition_is_a_clear_error():
    with pytest.raises(ValueError, match="beta"):
        HyperLinear(2, 2)(torch.randn(1, 2), None, torch.zeros(1, 1))
