"""The image JSCC network (shared/nn/image_jscc.py): Table I's shapes, the power convention,
the SNR layers of eq. (15)-(16), ADJSCC's AF modules and Table III's counts."""

from __future__ import annotations

import pytest
import torch

from shared.nn.image_jscc import (
    ImageJSCC,
    adaptation_parameters,
    average_power_awgn,
    bandwidth_ratio,
    channels_for_ratio,
)


def test_table_iii_counts_at_the_papers_width():
    # Hyper-AJSCC Table III: ADJSCC adds 67,840 parameters, Hyper-AJSCC 4,118, on CIFAR-10's
    # BDJSCC (256 filters, 32×32×3, c = 8 symbol channels)
    width = {"in_channels": 3, "image_size": 32, "filters": 256, "channels": 8}
    assert adaptation_parameters(ImageJSCC(**width, adaptation="attention")) == 67840
    assert adaptation_parameters(ImageJSCC(**width, adaptation="hyper")) == 4118
    assert adaptation_parameters(ImageJSCC(**width, adaptation="none")) == 0


def test_fashion_mnist_shapes_ratio_and_padding():
    model = ImageJSCC(in_channels=1, image_size=28, filters=8, channels=2, adaptation="hyper")
    x = torch.rand(3, 1, 28, 28)
    out = model(x, torch.full((3, 1), 10.0))
    assert out["x_hat"].shape == (3, 1, 28, 28)
    assert out["symbols"].shape == (3, 128) and model.symbols == 128
    x_hat = out["x_hat"].detach()
    assert float(x_hat.min()) >= 0.0 and float(x_hat.max()) <= 1.0
    # 64 complex channel uses for 784 pixels: R = 1/12.25
    assert model.ratio == pytest.approx(64 / 784)
    assert channels_for_ratio(1 / 12, (1, 28, 28)) == 2
    assert channels_for_ratio(1 / 6, (1, 28, 28)) == 4
    assert channels_for_ratio(1 / 12, (3, 32, 32)) == 8  # the paper's c = 8
    assert bandwidth_ratio(8, (3, 32, 32)) == pytest.approx(1 / 12)


def test_every_image_has_mean_power_one_per_real_symbol():
    model = ImageJSCC(filters=8, channels=2, adaptation="none")
    x = torch.rand(5, 1, 28, 28) * torch.tensor([0.01, 0.1, 1, 3, 10]).view(5, 1, 1, 1)
    z = model.encoder(x, torch.zeros(5, 1))
    assert torch.allclose(z.pow(2).mean(dim=1), torch.ones(5), atol=1e-5)


@pytest.mark.parametrize(("snr_db", "variance"), [(0.0, 1.0), (10.0, 0.1), (20.0, 0.01)])
def test_channel_noise_variance_per_real_symbol(snr_db, variance):
    z = torch.zeros(4000, 64)
    gen = torch.Generator().manual_seed(0)
    y = average_power_awgn(z, torch.full((4000, 1), snr_db), gen)
    assert float(y.var()) == pytest.approx(variance, rel=0.02)


def test_snr_layers_start_as_the_plain_network_and_then_follow_the_snr():
    torch.manual_seed(0)
    plain = ImageJSCC(filters=8, channels=2, adaptation="none")
    hyper = ImageJSCC(filters=8, channels=2, adaptation="hyper")
    missing = hyper.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(".snr_scale." in k for k in missing)
    x = torch.rand(2, 1, 28, 28)
    symbols = {s: hyper.encoder(x, torch.full((2, 1), s)) for s in (0.0, 20.0)}
    # ω = 0, c = 1 (the identity): eq. (15)-(16) is the basic module at every SNR
    assert torch.allclose(symbols[0.0], plain.encoder(x, torch.zeros(2, 1)), atol=1e-6)
    assert torch.allclose(symbols[0.0], symbols[20.0], atol=1e-6)
    with torch.no_grad():
        for layer in hyper.encoder.layers[:-1]:
            layer.snr_scale.omega.fill_(1.0)
    # (ω·ν + c) with ν = SNR/20: the first layer's outputs are doubled at 20 dB
    first = hyper.encoder.layers[0]
    f = torch.nn.functional.pad(x, (2, 2, 2, 2))
    scaled = first.conv(f) * 2.0
    expected = first.activation(scaled)
    assert torch.allclose(first(f, torch.full((2, 1), 20.0)), expected, atol=1e-6)
    changed = hyper.encoder(x, torch.full((2, 1), 20.0))
    assert not torch.allclose(changed, symbols[20.0], atol=1e-3)


def test_adjscc_af_modules_use_the_snr_and_sit_after_four_layers_each_side():
    model = ImageJSCC(filters=32, channels=2, adaptation="attention")
    afs = [n for n, m in model.named_modules() if n.endswith(".af")]
    assert len(afs) == 8
    first = model.encoder.layers[0].af
    assert first.fc1.in_features == 33 and first.fc1.out_features == 2  # C + 1 -> C / 16
    f = torch.rand(2, 32, 16, 16)
    assert not torch.allclose(first(f, torch.zeros(2, 1)), first(f, torch.full((2, 1), 20.0)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"adaptation": "film"}, "adaptation"), ({"image_size": 33}, "image_size"),
     ({"image_size": 64}, "image_size")],
)  # fmt: skip
def test_bad_configurations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageJSCC(**kwargs)
