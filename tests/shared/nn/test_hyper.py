import math

import numpy as np
import pytest
import torch
from torch import nn

from shared.nn.hyper import BetaGate, HyperConv2d, HyperLinear, equal_parts


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
    """Hyper-VIB eq. (13) and Hyper-AJSCC eq. (12) on numbers worked out by hand.

    β = 1e-3: gate 0 = sigmoid(0.5·ln 1e-3 + 1) = 0.0791554469, gate 1 = sigmoid(-ln 1e-3)
    = 1/1.001 = 0.9990009990; SNR 12.5 dB -> ν = 0.5: scale 0 = 0.5·2 + 0.5 = 1.5, scale 1 = 3.
    Linear part for x = (1, 2, 3): (1 + 0.5, 2 + 3 - 1) = (1.5, 4)."""
    layer = HyperLinear(3, 2)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
        layer.linear.bias.copy_(torch.tensor([0.5, -1.0]))
        layer.beta_gate.u.copy_(torch.tensor([0.5, -1.0]))
        layer.beta_gate.v.copy_(torch.tensor([1.0, 0.0]))
        layer.snr_scale.omega.copy_(torch.tensor([2.0, 0.0]))
        layer.snr_scale.c.copy_(torch.tensor([0.5, 3.0]))
    out = layer(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1e-3]]), torch.tensor([[12.5]]))
    expected = torch.tensor([[1.5 * 0.0791554469 * 1.5, 4.0 * 0.9990009990 * 3.0]])
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-7)


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


def kernel_layer(seed=0, **kwargs):
    torch.manual_seed(seed)
    return HyperConv2d(3, 4, 3, padding=1, conv_gate="kernel", **kwargs)


def test_conv_gate_mode_is_checked():
    with pytest.raises(ValueError, match="channel.*kernel"):
        HyperConv2d(3, 4, 3, conv_gate="filter")


def test_kernel_mode_gates_off_equals_conv2d():
    layer = kernel_layer(beta_gate=False, snr_scale=False)
    plain = nn.Conv2d(3, 4, 3, padding=1)
    plain.load_state_dict(layer.conv.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(layer(x), plain(x))


def test_kernel_mode_has_one_gate_per_kernel_block_and_bias():
    layer = kernel_layer(snr_scale=False)
    assert layer.beta_gate is None
    assert layer.beta_gate_kernel.u.shape == (4 * 3,)
    assert layer.beta_gate_bias.u.shape == (4,)
    # new gates keep BetaGate's default start (u = 0, v = 4)
    assert torch.all(layer.beta_gate_kernel.u == 0) and torch.all(layer.beta_gate_kernel.v == 4)


def test_kernel_mode_equals_conv_with_hand_scaled_kernel_blocks():
    """Hyper-VIB eq. (14): W[o, i] scaled by its own gate, b[o] by the bias gate, per example."""
    layer = kernel_layer(snr_scale=False).double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        layer.beta_gate_kernel.u.copy_(torch.randn(12, generator=gen, dtype=torch.float64))
        layer.beta_gate_kernel.v.copy_(torch.randn(12, generator=gen, dtype=torch.float64))
        layer.beta_gate_bias.u.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0]))
        layer.beta_gate_bias.v.copy_(torch.tensor([0.0, 1.0, -1.0, 0.3]))
    beta = torch.tensor([[1e-4], [0.05], [0.9]], dtype=torch.float64)
    x = torch.randn(3, 3, 6, 7, generator=gen, dtype=torch.float64)
    got = layer(x, beta)
    w, b = layer.conv.weight, layer.conv.bias
    for n in range(3):
        log_b = math.log(beta[n, 0].item())
        scaled = w.clone()
        for o in range(4):
            for i in range(3):
                k = o * 3 + i
                u, v = layer.beta_gate_kernel.u[k].item(), layer.beta_gate_kernel.v[k].item()
                scaled[o, i] = w[o, i] / (1.0 + math.exp(-(u * log_b + v)))
        u_b, v_b = layer.beta_gate_bias.u, layer.beta_gate_bias.v
        bias = b / (1.0 + torch.exp(-(u_b * log_b + v_b)))
        expected = nn.functional.conv2d(x[n : n + 1], scaled, bias, padding=1)
        torch.testing.assert_close(got[n : n + 1], expected, rtol=1e-12, atol=1e-12)


def test_kernel_mode_one_beta_per_batch_equals_the_per_example_path():
    """A batch with one β (the fast single-conv path) gives what each example gives alone
    next to examples at other β (the grouped-conv path), and the same gradients."""
    layer = kernel_layer().double()
    with torch.no_grad():
        layer.beta_gate_kernel.u.copy_(torch.linspace(-1, 1, 12, dtype=torch.float64))
        layer.beta_gate_bias.u.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0], dtype=torch.float64))
    x = torch.randn(4, 3, 6, 6, dtype=torch.float64)
    snr = torch.full((4, 1), 10.0, dtype=torch.float64)
    same = torch.full((4, 1), 3e-3, dtype=torch.float64)
    mixed = torch.tensor([[3e-3], [1e-5], [3e-3], [0.7]], dtype=torch.float64)
    fast, grouped = layer(x, same, snr), layer(x, mixed, snr)
    for n in (0, 2):  # the examples at β = 3e-3
        torch.testing.assert_close(fast[n], grouped[n], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(fast[1], grouped[1])
    layer(x[:1], same[:1], snr[:1]).sum().backward()  # one example: the fast path
    fast_grad = layer.beta_gate_kernel.u.grad.clone()
    layer.zero_grad()
    layer(x[[0, 0]], mixed[[0, 1]], snr[:2])[0].sum().backward()  # grouped path, example 0
    torch.testing.assert_close(fast_grad, layer.beta_gate_kernel.u.grad, rtol=1e-10, atol=1e-12)


def test_kernel_mode_differs_from_channel_mode():
    """With distinct gates per input channel the kernel form is not a per-channel scaling."""
    layer = kernel_layer(snr_scale=False)
    with torch.no_grad():
        layer.beta_gate_kernel.u.copy_(torch.linspace(-1, 1, 12))
    x = torch.randn(1, 3, 5, 5)
    beta = torch.tensor([[1e-3]])
    got = layer(x, beta)
    per_input = [
        nn.functional.conv2d(x[:, i : i + 1], layer.conv.weight[:, i : i + 1], padding=1)
        for i in range(3)
    ]
    # a per-output-channel gate c_o would give got - bias = c_o·sum_i per_input[i]
    bias_part = layer.conv.bias * layer.beta_gate_bias(beta)
    plain = sum(per_input)
    ratio = (got - bias_part.view(1, 4, 1, 1)) / plain
    assert ratio.flatten(2).std(dim=2).max() > 1e-3


def test_kernel_mode_gradients_reach_gate_parameters():
    layer = kernel_layer()
    out = layer(
        torch.randn(5, 3, 6, 6), torch.logspace(-4, 0, 5).view(5, 1), torch.full((5, 1), 10.0)
    )
    out.square().sum().backward()
    names = ("beta_gate_kernel.u", "beta_gate_kernel.v", "beta_gate_bias.u", "beta_gate_bias.v")
    for name in names + ("conv.weight", "conv.bias", "snr_scale.omega"):
        grad = dict(layer.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_kernel_mode_exports_to_onnx_with_dynamic_batch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from trainer.export import export_graph

    layer = HyperConv2d(2, 3, 3, stride=2, padding=1, conv_gate="kernel").eval()
    with torch.no_grad():
        layer.beta_gate_kernel.u.copy_(torch.linspace(-1, 0.5, 6))
        layer.beta_gate_bias.u.copy_(torch.tensor([-0.5, 0.2, 1.0]))
        layer.snr_scale.omega.fill_(0.3)
    example = (torch.randn(2, 2, 9, 9), torch.full((2, 1), 1e-2), torch.full((2, 1), 10.0))
    path = export_graph(layer, example, ["out"], tmp_path / "conv.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 4):
        x = torch.randn(n, 2, 9, 9)
        beta = torch.logspace(-5, 0, n).view(n, 1)
        snr = torch.linspace(0, 25, n).view(n, 1)
        (got,) = session.run(None, {"x": x.numpy(), "beta": beta.numpy(), "snr_db": snr.numpy()})
        with torch.no_grad():
            expected = layer(x, beta, snr).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_kernel_mode_interleaved_parts_equal_the_per_example_path():
    """Hyper-VIB Alg. 1 with T draws per update: a batch in T interleaved parts of one β each
    (example i in part i mod T) runs as one grouped conv over the parts, and gives what each
    example gives on its own."""
    layer = kernel_layer().double()
    with torch.no_grad():
        layer.beta_gate_kernel.u.copy_(torch.linspace(-1, 1, 12, dtype=torch.float64))
        layer.beta_gate_bias.u.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0], dtype=torch.float64))
    x = torch.randn(6, 3, 6, 6, dtype=torch.float64)
    snr = torch.linspace(0, 25, 6, dtype=torch.float64).view(-1, 1)
    parts = torch.tensor([3e-3, 1e-5, 0.7, 3e-3, 1e-5, 0.7], dtype=torch.float64).view(-1, 1)
    assert equal_parts(parts) == 3
    together = layer(x, parts, snr)
    alone = torch.cat([layer(x[i : i + 1], parts[i : i + 1], snr[i : i + 1]) for i in range(6)])
    torch.testing.assert_close(together, alone, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(together[0], together[1])  # the parts' kernels differ
    # the gradient reaches every part's gate through the grouped conv as it does alone
    grads = []
    for out in (together, alone):
        layer.zero_grad()
        out.square().sum().backward(retain_graph=True)
        grads.append(layer.beta_gate_kernel.u.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("betas", "parts"),
    [([1, 1, 1, 1], 1), ([1, 2, 1, 2], 2), ([1, 2, 3, 4], None), ([1, 1, 2], None),
     ([1, 1, 2, 2], None), ([1, 2, 3, 1, 2, 3], 3), ([1, 2, 1, 2, 1, 2], 2), ([1, 2, 1, 3], None),
     ([1, 2, 1, 2, 1], None)],
)  # fmt: skip
def test_equal_parts_finds_interleaved_parts_only(betas, parts):
    assert equal_parts(torch.tensor(betas, dtype=torch.float32).view(-1, 1)) == parts


def test_scaled_gate_is_the_same_function_of_beta():
    """BetaGate(scale=s) stores u = s·u', v = s·v': with u' = 0.05, v' = 0.1 and s = 10 the
    gate is sigmoid(0.5·ln β + 1), the first gate of the hand-worked test above (0.0791554469
    at β = 1e-3), and a new gate of any scale starts at sigmoid(4) whatever β."""
    scaled = BetaGate(2, scale=10.0)
    plain = BetaGate(2)
    beta = torch.tensor([[1e-5], [1e-3], [1.0]])
    torch.testing.assert_close(scaled(beta), plain(beta))
    torch.testing.assert_close(plain(beta), torch.full((3, 2), 1 / (1 + math.exp(-4.0))))
    with torch.no_grad():
        scaled.u.fill_(0.05)
        scaled.v.fill_(0.1)
    torch.testing.assert_close(
        scaled(torch.tensor([[1e-3]])), torch.full((1, 2), 0.0791554469), rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize("scale", [3.0, 10.0])
def test_scaled_gate_learns_scale_times_faster_under_adam(scale):
    """Adam's first step moves each parameter by the learning rate (m̂/√v̂ = ±1), so the gate's
    effective u = s·u' moves s times as far as an unscaled gate's: the β module's own learning
    rate, s times the model's."""

    def first_step_change(gate):
        optimiser = torch.optim.Adam(gate.parameters(), lr=1e-3)
        before = (gate.scale * gate.u).detach().clone()
        gate(torch.tensor([[1e-2], [1e-4]])).sum().backward()
        optimiser.step()
        return (gate.scale * gate.u).detach() - before

    ratio = first_step_change(BetaGate(4, scale=scale)) / first_step_change(BetaGate(4))
    torch.testing.assert_close(ratio, torch.full((4,), scale), rtol=1e-4, atol=0.0)


def test_gate_scale_reaches_every_beta_gate_and_is_checked():
    layer = HyperConv2d(2, 3, 3, conv_gate="kernel", beta_gate_scale=5.0)
    assert layer.beta_gate_kernel.scale == layer.beta_gate_bias.scale == 5.0
    assert HyperLinear(2, 3, beta_gate_scale=5.0).beta_gate.scale == 5.0
    with pytest.raises(ValueError, match="scale must be > 0"):
        BetaGate(3, scale=0.0)
